//! Timestamp recognition: RFC 3339 / ISO 8601, syslog (`Nov 22 03:49:44`),
//! common log (`[10/Oct/2000:13:55:36 -0700]`) and epoch numbers.
//!
//! Hand-written rather than through a date crate because it runs on every
//! line: each parser looks at fixed byte positions and bails on the first
//! mismatch, so a line without a timestamp costs a few comparisons.

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since the epoch.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn num(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let s = b.get(at..at + len)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn valid(mo: u32, d: u32, h: u32, mi: u32, s: u32) -> bool {
    (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s <= 60
}

/// Fractional seconds at `b[at..]` after a `.` or `,`: (millis, bytes used).
fn fraction(b: &[u8], at: usize) -> (i64, usize) {
    if !matches!(b.get(at), Some(b'.') | Some(b',')) {
        return (0, 0);
    }
    let mut i = at + 1;
    let mut ms = 0i64;
    let mut digits = 0;
    while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        if digits < 3 {
            ms = ms * 10 + (c - b'0') as i64;
        }
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return (0, 0);
    }
    for _ in digits..3 {
        ms *= 10;
    }
    (ms, i - at)
}

/// Zone offset at `b[at..]`: `Z`, `+hh:mm`, `+hhmm`, `+hh`; (seconds east, bytes used).
fn zone(b: &[u8], at: usize) -> (i64, usize) {
    match b.get(at) {
        Some(b'Z') | Some(b'z') => (0, 1),
        Some(&sign @ (b'+' | b'-')) => {
            let Some(h) = num(b, at + 1, 2) else {
                return (0, 0);
            };
            let (m, used) = if b.get(at + 3) == Some(&b':') {
                (num(b, at + 4, 2), 6)
            } else {
                (num(b, at + 3, 2), 5)
            };
            let (m, used) = match m {
                Some(m) => (m, used),
                None => (0, 3),
            };
            let secs = (h as i64 * 3600) + m as i64 * 60;
            (if sign == b'-' { -secs } else { secs }, used)
        }
        _ => (0, 0),
    }
}

/// RFC 3339 / ISO 8601 at the start of `b` (`T` or space between date and
/// time; zone optional, UTC assumed). Returns (epoch ms, bytes consumed).
pub fn parse_rfc3339(b: &[u8]) -> Option<(i64, usize)> {
    // `-` per ISO 8601; `/` as Go's standard logger writes it.
    let sep = *b.get(4)?;
    if b.len() < 19 || !matches!(sep, b'-' | b'/') || b[7] != sep || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, s) = (num(b, 11, 2)?, num(b, 14, 2)?, num(b, 17, 2)?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let (ms, flen) = fraction(b, 19);
    let (off, zlen) = zone(b, 19 + flen);
    let secs = days_from_civil(y as i64, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64 - off;
    Some((secs * 1000 + ms, 19 + flen + zlen))
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(b: &[u8], at: usize) -> Option<u32> {
    let m = b.get(at..at + 3)?;
    MONTHS
        .iter()
        .position(|x| x[..] == *m)
        .map(|i| i as u32 + 1)
}

/// Syslog `Mmm dd hh:mm:ss` (day space-padded) at the start of `b`. The year
/// is not written, so it is the year of `now_ms`, or the previous one when
/// that would put the line more than a day in the future.
pub fn parse_syslog(b: &[u8], now_ms: i64) -> Option<(i64, usize)> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let mo = month(b, 0)?;
    let d = if b[4] == b' ' {
        num(b, 5, 1)?
    } else {
        num(b, 4, 2)?
    };
    let (h, mi, s) = (num(b, 7, 2)?, num(b, 10, 2)?, num(b, 13, 2)?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let (ms, flen) = fraction(b, 15);
    Some((without_year(now_ms, [mo, d, h, mi, s], ms), 15 + flen))
}

/// Epoch ms of a month/day/time written without a year: the year of
/// `now_ms`, or the previous one when that would put it more than a day in
/// the future (a December line read in January).
fn without_year(now_ms: i64, [mo, d, h, mi, s]: [u32; 5], ms: i64) -> i64 {
    let (year, _, _) = civil_from_days(now_ms.div_euclid(86_400_000));
    let at =
        |y: i64| (days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64) * 1000 + ms;
    let t = at(year);
    if t > now_ms + 86_400_000 {
        at(year - 1)
    } else {
        t
    }
}

/// klog / glog `MMDD hh:mm:ss.uuuuuu` at the start of `b` (after the level
/// letter), year inferred as for syslog. Returns (epoch ms, bytes consumed).
pub fn parse_klog(b: &[u8], now_ms: i64) -> Option<(i64, usize)> {
    if b.len() < 13 || b[4] != b' ' || b[7] != b':' || b[10] != b':' {
        return None;
    }
    let (mo, d) = (num(b, 0, 2)?, num(b, 2, 2)?);
    let (h, mi, s) = (num(b, 5, 2)?, num(b, 8, 2)?, num(b, 11, 2)?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let (ms, flen) = fraction(b, 13);
    Some((without_year(now_ms, [mo, d, h, mi, s], ms), 13 + flen))
}

/// Common log format `dd/Mmm/yyyy:hh:mm:ss +zzzz` at the start of `b`.
pub fn parse_common_log(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
    {
        return None;
    }
    let d = num(b, 0, 2)?;
    let mo = month(b, 3)?;
    let y = num(b, 7, 4)?;
    let (h, mi, s) = (num(b, 12, 2)?, num(b, 15, 2)?, num(b, 18, 2)?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let (off, zlen) = if b.get(20) == Some(&b' ') {
        let (o, l) = zone(b, 21);
        (o, if l > 0 { l + 1 } else { 0 })
    } else {
        (0, 0)
    };
    let secs = days_from_civil(y as i64, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64 - off;
    Some((secs * 1000, 20 + zlen))
}

/// PHP's error log `dd-Mmm-yyyy hh:mm:ss` (zone name ignored: UTC, as PHP
/// writes it by default) at the start of `b`.
pub fn parse_dmy(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < 20
        || b[2] != b'-'
        || b[6] != b'-'
        || b[11] != b' '
        || b[14] != b':'
        || b[17] != b':'
    {
        return None;
    }
    let (d, mo, y) = (num(b, 0, 2)?, month(b, 3)?, num(b, 7, 4)?);
    let (h, mi, s) = (num(b, 12, 2)?, num(b, 15, 2)?, num(b, 18, 2)?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let secs = days_from_civil(y as i64, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64;
    let utc = b.get(20..24) == Some(b" UTC");
    Some((secs * 1000, if utc { 24 } else { 20 }))
}

/// A leading timestamp in a text line: at the start (optionally inside `[`),
/// or a common-log `[...]` within the first 80 bytes. Returns epoch ms and
/// the byte index just after the timestamp (and a closing `]`).
pub fn leading_timestamp(line: &str, now_ms: i64) -> Option<(i64, usize)> {
    let b = line.as_bytes();
    let first = *b.first()?;
    // Ruby's Logger: `E, [2026-11-22T03:49:44.230000 #4411] ERROR -- : ...`
    let start = if b.len() > 4 && first.is_ascii_uppercase() && &b[1..4] == b", [" {
        4
    } else {
        usize::from(first == b'[')
    };
    let rest = &b[start..];
    let found = if rest.first().is_some_and(|c| c.is_ascii_digit()) {
        parse_rfc3339(rest)
            .or_else(|| parse_common_log(rest))
            .or_else(|| parse_dmy(rest))
    } else if rest.first().is_some_and(|c| c.is_ascii_uppercase()) {
        parse_syslog(rest, now_ms)
    } else {
        None
    };
    if let Some((t, used)) = found {
        let mut end = start + used;
        if start > 0 && b.get(end) == Some(&b']') {
            end += 1;
        }
        return Some((t, end));
    }
    // `host - user [10/Oct/2000:13:55:36 -0700] "GET ..."`
    let window = &b[..b.len().min(80)];
    let open = memchr::memchr(b'[', window)?;
    let (t, used) = parse_common_log(&b[open + 1..])?;
    Some((t, open + 1 + used))
}

/// An epoch number of unknown unit, judged by magnitude: seconds, millis,
/// micros or nanos. Fractions of seconds are kept to the millisecond.
pub fn epoch_number(v: f64) -> Option<i64> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let ms = if v < 1e11 {
        v * 1e3
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1e3
    } else {
        v / 1e6
    };
    Some(ms as i64)
}

/// A JSON time value: RFC 3339 string, numeric string, or number.
pub fn json_time(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => epoch_number(n.as_f64()?),
        serde_json::Value::String(s) => {
            let b = s.as_bytes();
            if let Some((t, used)) = parse_rfc3339(b) {
                return (used == b.len()).then_some(t);
            }
            s.parse::<f64>().ok().and_then(epoch_number)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_319_384_000; // 2026-11-22T03:49:44Z

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 10_000, 20_414, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_variants() {
        let base = parse_rfc3339(b"2026-11-22T03:49:44Z").unwrap().0;
        assert_eq!(base, NOW);
        assert_eq!(
            parse_rfc3339(b"2026-11-22T03:49:44.5Z").unwrap().0,
            NOW + 500
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-22 03:49:44,123 INFO").unwrap(),
            (NOW + 123, 23)
        );
        assert_eq!(parse_rfc3339(b"2026-11-22T05:49:44+02:00").unwrap().0, NOW);
        assert_eq!(
            parse_rfc3339(b"2026-11-22T03:49:44.123456789-0100")
                .unwrap()
                .0,
            NOW + 3_600_000 + 123
        );
        assert!(parse_rfc3339(b"2026-13-22T03:49:44Z").is_none());
        assert!(parse_rfc3339(b"not a time at all!!").is_none());
    }

    #[test]
    fn syslog_and_common_log() {
        assert_eq!(
            parse_syslog(b"Nov 22 03:49:44 host sshd[1]: x", NOW).unwrap(),
            (NOW, 15)
        );
        let jan = parse_syslog(b"Jan  5 00:00:00 x", NOW).unwrap().0;
        assert_eq!(civil_from_days(jan / 86_400_000), (2026, 1, 5));
        let dec = parse_syslog(b"Dec 31 00:00:00 x", NOW).unwrap().0;
        assert_eq!(
            civil_from_days(dec / 86_400_000),
            (2025, 12, 31),
            "future dates roll back a year"
        );
        let (t, used) = parse_common_log(b"22/Nov/2026:04:49:44 +0100] \"GET").unwrap();
        assert_eq!((t, used), (NOW, 26));
    }

    #[test]
    fn leading_in_lines() {
        assert_eq!(
            leading_timestamp("2026-11-22T03:49:44Z boom", NOW),
            Some((NOW, 20))
        );
        assert_eq!(
            leading_timestamp("[2026-11-22 03:49:44] boom", NOW),
            Some((NOW, 21))
        );
        let l = "127.0.0.1 - frank [22/Nov/2026:03:49:44 +0000] \"GET / HTTP/1.0\" 200";
        assert_eq!(leading_timestamp(l, NOW).unwrap().0, NOW);
        assert_eq!(leading_timestamp("hello world", NOW), None);
        assert_eq!(leading_timestamp("", NOW), None);
        // Go's log package, Ruby's Logger, PHP's error log.
        assert_eq!(
            leading_timestamp("2026/11/22 03:49:44 listening", NOW),
            Some((NOW, 19))
        );
        let ruby = "E, [2026-11-22T03:49:44.230000 #4411] ERROR -- : x";
        assert_eq!(leading_timestamp(ruby, NOW).unwrap().0, NOW + 230);
        let php = "[22-Nov-2026 03:49:44 UTC] PHP Warning:  x";
        assert_eq!(leading_timestamp(php, NOW), Some((NOW, 26)));
    }

    #[test]
    fn klog_time() {
        assert_eq!(
            parse_klog(b"1122 03:49:44.123456 1 a.go:1]", NOW),
            Some((NOW + 123, 20))
        );
        assert_eq!(parse_klog(b"1322 03:49:44.1", NOW), None);
    }

    #[test]
    fn epoch_units() {
        assert_eq!(epoch_number(1_795_319_384.0), Some(NOW));
        assert_eq!(epoch_number(1_795_319_384_000.0), Some(NOW));
        assert_eq!(epoch_number(1_795_319_384_000_000.0), Some(NOW));
        assert_eq!(epoch_number(1_795_319_384_000_000_000.0), Some(NOW));
        assert_eq!(
            json_time(&serde_json::json!("2026-11-22T03:49:44Z")),
            Some(NOW)
        );
        assert_eq!(json_time(&serde_json::json!("1795319384")), Some(NOW));
        assert_eq!(json_time(&serde_json::json!(true)), None);
    }
}
