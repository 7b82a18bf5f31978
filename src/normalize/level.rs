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
    name_level(lower)
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
///
/// A *word* is a maximal run of ASCII letters in the first 160 bytes; at
/// most eight are looked at. This runs on every text line, so the letters
/// are found eight bytes at a time ([`letter_bits`]) and a word is only
/// compared with the level names when it has their length (3–13).
pub fn from_text(line: &str) -> Option<Level> {
    if let Some(l) = glog_level(line.as_bytes()) {
        return Some(l);
    }
    let head = &line[..floor_boundary(line, HEAD)];
    let hb = head.as_bytes();
    // Bit `i` of `mask[i / 64]`: byte `i` is an ASCII letter.
    let mut mask = [0u64; 3];
    for (m, block) in mask.iter_mut().zip(hb.chunks(64)) {
        *m = letter_bits(block);
    }
    let mut words = 0;
    let mut i = 0;
    while words < 8 {
        let Some(start) = next_bit(&mask, i, 0) else {
            break;
        };
        i = next_bit(&mask, start, u64::MAX).map_or(hb.len(), |e| e.min(hb.len()));
        words += 1;
        let len = i - start;
        if !(3..=13).contains(&len) {
            continue;
        }
        let word = &hb[start..i];
        let bracketed = start > 0 && matches!(hb[start - 1], b'[' | b'<' | b'(' | b'|');
        let colon = matches!(hb.get(i), Some(b':' | b']'));
        let keyed = hb[..start].ends_with(b"level=") || hb[..start].ends_with(b"lvl=");
        let upper = word.iter().all(u8::is_ascii_uppercase);
        if upper || bracketed || colon || keyed || words == 1 {
            if let Some(l) = from_letters(word) {
                return Some(l);
            }
        }
    }
    None
}

/// A glog prefix's level (`E1122 10:00:00.000000 ...`: severity letter and
/// four digits of month and day); `F` (fatal) is an error.
fn glog_level(b: &[u8]) -> Option<Level> {
    if b.len() < 5 || !b[1..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    match b[0] {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' | b'F' => Some(Level::Error),
        _ => None,
    }
}

/// How much of a line [`from_text`] looks at.
const HEAD: usize = 160;

/// The first position at or after `from` whose bit in `mask` is set, with
/// the mask's words XORed with `flip` (`u64::MAX`: the first clear bit).
#[inline]
fn next_bit(mask: &[u64; 3], from: usize, flip: u64) -> Option<usize> {
    let mut idx = from / 64;
    let mut w = (*mask.get(idx)? ^ flip) & (u64::MAX << (from % 64));
    loop {
        if w != 0 {
            return Some(idx * 64 + w.trailing_zeros() as usize);
        }
        idx += 1;
        w = *mask.get(idx)? ^ flip;
    }
}

/// Bit `j` set when `block[j]` is an ASCII letter (`block` at most 64
/// bytes), eight bytes per step.
fn letter_bits(block: &[u8]) -> u64 {
    let mut bits = 0u64;
    let mut chunks = block.chunks_exact(8);
    let mut k = 0;
    for c in &mut chunks {
        bits |= letter_byte_bits(u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))) << (k * 8);
        k += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Zero padding is not a letter.
        let w = rest
            .iter()
            .enumerate()
            .fold(0u64, |w, (j, &c)| w | (u64::from(c) << (j * 8)));
        bits |= letter_byte_bits(w) << (k * 8);
    }
    bits
}

/// Bit `j` set when byte `j` of `w` is an ASCII letter.
#[inline]
fn letter_byte_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Per byte, with the top bit cleared so no sum carries into the next
    // byte: `y >= 'a'` and not `y >= '{'` after folding case (`| 0x20`),
    // and the byte is ASCII. Exact for every byte (no borrows).
    let y = (w | (ONES * 0x20)) & !HIGH;
    let alpha =
        y.wrapping_add(ONES * (0x80 - 0x61)) & !y.wrapping_add(ONES * (0x80 - 0x7b)) & !w & HIGH;
    // The top bit of byte j to bit j (a multiply gathers them).
    (alpha >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// [`from_name`] of a word of ASCII letters (nothing to trim).
fn from_letters(word: &[u8]) -> Option<Level> {
    if word.len() > 13 {
        return None;
    }
    let mut buf = [0u8; 13];
    let lower = &mut buf[..word.len()];
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    name_level(lower)
}

/// The level of a lower-case name.
fn name_level(lower: &[u8]) -> Option<Level> {
    Some(match lower {
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
    use proptest::strategy::Strategy;

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

    /// The word scan as it was written before [`letter_bits`]: one byte at
    /// a time. `from_text` must agree with it on every line.
    fn from_text_bytewise(line: &str) -> Option<Level> {
        if let Some(l) = glog_level(line.as_bytes()) {
            return Some(l);
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

    #[test]
    fn letter_bits_are_exact_for_every_byte() {
        for c in 0..=255u8 {
            for len in 1..=64 {
                for at in [0, len / 2, len - 1] {
                    let mut b = vec![b'0'; len];
                    b[at] = c;
                    let m = letter_bits(&b);
                    let want = if c.is_ascii_alphabetic() {
                        1u64 << at
                    } else {
                        0
                    };
                    assert_eq!(m, want, "byte {c:#x} at {at} of {len}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn from_text_agrees_with_the_bytewise_scan(
            words in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "INFO", "info", "Warn", "WARNING", "error", "ERR", "fatal", "debug",
                        "dbg", "informational", "Information", "emergency", "notice", "x",
                        "ab", "level=", "lvl=", "[", "]", ":", "<", "(", "|", " ", "  ", "é",
                        "日本", "\t", "0", "12:00:01", "E1122", "W1234", "-", "=",
                    ]).prop_map(str::to_string),
                    "[a-zA-Z]{1,16}",
                    "\\PC{0,4}",
                ],
                0..40,
            )
        ) {
            let line: String = words.concat();
            proptest::prop_assert_eq!(from_text(&line), from_text_bytewise(&line), "{:?}", line);
        }
    }
}
