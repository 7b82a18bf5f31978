//! logfmt: `key=value key2="quoted value" flag`.
//!
//! Parsing is strict on purpose: in `auto` mode a line is logfmt only when
//! *every* token is a pair (or a bare key) and there are at least two pairs,
//! so prose such as `connected to host=db` stays text.

/// Parse `line` into pairs; `None` if any token is not `key[=value]`.
pub fn parse(line: &str) -> Option<Vec<(&str, String)>> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut pairs = Vec::new();
    let mut with_value = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            let c = b[i];
            if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@' | b'/')) {
                return None;
            }
            i += 1;
        }
        if i == k0 {
            return None;
        }
        let key = &line[k0..i];
        if i >= b.len() || b[i] == b' ' {
            if pairs.is_empty() {
                return None; // a line of prose, not `key=value ...`
            }
            pairs.push((key, String::new()));
            continue;
        }
        i += 1; // '='
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            let mut seg = i;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') => {
                        v.push_str(&line[seg..i]);
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        v.push_str(&line[seg..i]);
                        match b.get(i + 1) {
                            Some(b'n') => v.push('\n'),
                            Some(b't') => v.push('\t'),
                            Some(b'r') => v.push('\r'),
                            Some(&c) if c == b'"' || c == b'\\' => v.push(c as char),
                            Some(_) => v.push('\\'),
                            None => return None,
                        }
                        i += if b
                            .get(i + 1)
                            .is_some_and(|c| matches!(c, b'n' | b't' | b'r' | b'"' | b'\\'))
                        {
                            2
                        } else {
                            1
                        };
                        seg = i;
                    }
                    Some(_) => i += 1,
                }
            }
            if i < b.len() && b[i] != b' ' {
                return None;
            }
            v
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            line[v0..i].to_string()
        };
        with_value += 1;
        pairs.push((key, value));
    }
    (with_value >= 2).then_some(pairs)
}

/// Cheap pre-check for `auto`: starts with `ident=`.
pub fn looks_like(line: &str) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'@'))
    {
        i += 1;
    }
    i > 0 && b.get(i) == Some(&b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_quotes() {
        let p =
            parse(r#"time=2026-01-01T00:00:00Z level=warn msg="disk \"sda\" full" retry"#).unwrap();
        assert_eq!(p[0], ("time", "2026-01-01T00:00:00Z".to_string()));
        assert_eq!(p[2], ("msg", "disk \"sda\" full".to_string()));
        assert_eq!(p[3], ("retry", String::new()));
    }

    #[test]
    fn rejects_prose() {
        assert!(parse("connected to host=db port=5432").is_none());
        assert!(parse("a=1").is_none(), "one pair is not enough");
        assert!(parse(r#"a=1 b="unterminated"#).is_none());
        assert!(looks_like("level=info x=1"));
        assert!(!looks_like("hello level=info"));
    }
}
