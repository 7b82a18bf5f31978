//! Level detection: JSON level values (names and pino/bunyan numbers) and
//! text prefixes (`ERROR`, `[warn]`, `level=info`, glog's `W1122`).

use crate::event::Level;

/// A level name as loggers write it, any case.
pub fn from_name(s: &str) -> Option<Level> {
    let s = s.trim();
    if s.len() > 13 {
        return None;
    }
    let mut buf = [0u8; 13];
    let lower = &mut buf[..s.len()];
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"trace" | b"debug" | b"dbg" | b"verbose" | b"finest" | b"finer" | b"fine" | b"all" => {
            Level::Debug
        }
        b"info" | b"information" | b"informational" | b"notice" | b"inf" | b"config" => Level::Info,
        b"warn" | b"warning" | b"wrn" => Level::Warn,
        b"error" | b"err" | b"fatal" | b"critical" | b"crit" | b"alert" | b"emerg"
        | b"emergency" | b"panic" | b"severe" | b"dpanic" => Level::Error,
        _ => return None,
    })
}

/// pino/bunyan numeric levels (10 trace .. 60 fatal) and syslog severities
/// (0 emerg .. 7 debug).
pub fn from_number(n: f64) -> Option<Level> {
    if !n.is_finite() {
        return None;
    }
    Some(match n as i64 {
        0..=3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        7 => Level::Debug,
        10..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=100 => Level::Error,
        _ => return None,
    })
}

/// A JSON `level`-like value.
pub fn from_json(v: &serde_json::Value) -> Option<Level> {
    match v {
        serde_json::Value::String(s) => {
            from_name(s).or_else(|| s.parse().ok().and_then(from_number))
        }
        serde_json::Value::Number(n) => from_number(n.as_f64()?),
        _ => None,
    }
}

/// The level written near the start of a text line (after any timestamp):
/// the first word among the first few that is a level name — any case when it
/// is bracketed, followed by `:` or the first word, upper case otherwise —
/// or a glog prefix (`E1122 10:00:00.000000 ...`).
pub fn from_text(line: &str) -> Option<Level> {
    let b = line.as_bytes();
    if b.len() >= 5
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
    {
        return Some(match b[0] {
            b'I' => Level::Info,
            b'W' => Level::Warn,
            _ => Level::Error,
        });
    }
    let head = &line[..floor_boundary(line, 160)];
    let mut words = 0;
    let mut i = 0;
    let hb = head.as_bytes();
    while i < hb.len() && words < 8 {
        while i < hb.len() && !hb[i].is_ascii_alphabetic() {
            i += 1;
        }
        let start = i;
        while i < hb.len() && hb[i].is_ascii_alphabetic() {
            i += 1;
        }
        if start == i {
            break;
        }
        words += 1;
        let word = &head[start..i];
        if word.len() < 3 {
            continue;
        }
        let bracketed = start > 0 && matches!(hb[start - 1], b'[' | b'<' | b'(' | b'|');
        let colon = hb.get(i) == Some(&b':') || hb.get(i) == Some(&b']');
        let keyed = start >= 6 && head[..start].ends_with("level=")
            || start >= 4 && head[..start].ends_with("lvl=");
        let upper = word.bytes().all(|c| c.is_ascii_uppercase());
        if upper || bracketed || colon || keyed || words == 1 {
            if let Some(l) = from_name(word) {
                return Some(l);
            }
        }
    }
    None
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(from_name("WARNING"), Some(Level::Warn));
        assert_eq!(from_name("Fatal"), Some(Level::Error));
        assert_eq!(from_name("nope"), None);
        assert_eq!(from_number(30.0), Some(Level::Info));
        assert_eq!(from_number(50.0), Some(Level::Error));
        assert_eq!(from_number(20.0), Some(Level::Debug));
        assert_eq!(from_json(&serde_json::json!("40")), Some(Level::Warn));
    }

    #[test]
    fn text_prefixes() {
        assert_eq!(from_text(" ERROR something broke"), Some(Level::Error));
        assert_eq!(from_text(" [warn] disk almost full"), Some(Level::Warn));
        assert_eq!(
            from_text("W1122 10:00:00.000000 1 x.go:1] hm"),
            Some(Level::Warn)
        );
        assert_eq!(
            from_text(" app[123]: level=error msg=x"),
            Some(Level::Error)
        );
        assert_eq!(
            from_text(" myhost sshd[22]: INFO: accepted"),
            Some(Level::Info)
        );
        assert_eq!(from_text(" debug: starting"), Some(Level::Debug));
        assert_eq!(from_text("user info updated for account"), None);
        assert_eq!(from_text("no level here at all"), None);
        assert_eq!(from_text(""), None);
    }
}
