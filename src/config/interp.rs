//! `${VAR}` and `${VAR:-default}` substitution from the environment.
//!
//! Substitution happens on the raw text, before TOML parsing, so a variable
//! can stand anywhere a value can (`count = ${N}` as well as
//! `key = "${KEY}"`). Comments are left alone, so documentation in a config
//! may mention variables that are not set. Inside a basic string (`"..."`)
//! the substituted value is escaped, so a secret containing a quote cannot
//! break the file. `$${` writes a literal `${`.
//!
//! Every substitution boundary is recorded in [`SourceText::shifts`] so that
//! positions reported by the parser map back to the file as written.

use super::error::{ConfigError, SourceText};

/// Interpolate `src.text` using `lookup`; records shifts in `src`.
pub fn interpolate(
    src: &mut SourceText,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    #[derive(PartialEq, Clone, Copy)]
    enum State {
        Plain,
        Comment,
        Basic,
        Literal,
        MultiBasic,
        MultiLiteral,
    }
    let text = src.text.clone();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut shifts = Vec::new();
    let mut state = State::Plain;
    let mut i = 0;
    let mut copied = 0; // bytes of `text` already copied to `out`
    while i < b.len() {
        let c = b[i];
        match state {
            State::Comment => {
                if c == b'\n' {
                    state = State::Plain;
                }
                i += 1;
                continue;
            }
            State::Plain => {
                if c == b'#' {
                    state = State::Comment;
                } else if b[i..].starts_with(b"\"\"\"") {
                    state = State::MultiBasic;
                    i += 3;
                    continue;
                } else if b[i..].starts_with(b"'''") {
                    state = State::MultiLiteral;
                    i += 3;
                    continue;
                } else if c == b'"' {
                    state = State::Basic;
                } else if c == b'\'' {
                    state = State::Literal;
                }
            }
            State::Basic | State::MultiBasic => {
                if c == b'\\' {
                    i += 2;
                    continue;
                }
                if state == State::MultiBasic && b[i..].starts_with(b"\"\"\"") {
                    state = State::Plain;
                    i += 3;
                    continue;
                }
                if state == State::Basic && (c == b'"' || c == b'\n') {
                    state = State::Plain;
                }
            }
            State::Literal => {
                if c == b'\'' || c == b'\n' {
                    state = State::Plain;
                }
            }
            State::MultiLiteral => {
                if b[i..].starts_with(b"'''") {
                    state = State::Plain;
                    i += 3;
                    continue;
                }
            }
        }
        if c != b'$' || state == State::Comment {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"$${") {
            out.push_str(&text[copied..i]);
            out.push_str("${");
            shifts.push((out.len(), i + 3));
            i += 3;
            copied = i;
            continue;
        }
        if !b[i..].starts_with(b"${") {
            i += 1;
            continue;
        }
        let Some(close) = text[i..].find('}') else {
            return Err(src.error_at(
                Some(i..i + 2),
                "unterminated \"${\"; write ${NAME} or ${NAME:-default} (or $${ for a literal)",
            ));
        };
        let inner = &text[i + 2..i + close];
        let (name, default) = match inner.find(":-") {
            Some(p) => (&inner[..p], Some(&inner[p + 2..])),
            None => (inner, None),
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(src.error_at(
                Some(i..i + close + 1),
                format!("invalid variable name {name:?} in \"${{{inner}}}\"; names are letters, digits and _"),
            ));
        }
        let value = match (lookup(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(src.error_at(
                    Some(i..i + close + 1),
                    format!(
                        "environment variable {name} is not set; set it, or give a default with ${{{name}:-default}}"
                    ),
                ))
            }
        };
        out.push_str(&text[copied..i]);
        if matches!(state, State::Basic | State::MultiBasic) {
            for ch in value.chars() {
                match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' if state == State::Basic => out.push_str("\\n"),
                    c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {
                        out.push_str(&format!("\\u{:04x}", c as u32))
                    }
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(&value);
        }
        i += close + 1;
        copied = i;
        shifts.push((out.len(), i));
    }
    out.push_str(&text[copied..]);
    src.shifts = shifts;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run(text: &str) -> Result<(String, SourceText), ConfigError> {
        let mut src = SourceText::new(Path::new("t.toml"), text.to_string());
        let env = |k: &str| match k {
            "HOST" => Some("web-1".to_string()),
            "QUOTE" => Some("a\"b\\c".to_string()),
            "N" => Some("12".to_string()),
            _ => None,
        };
        interpolate(&mut src, &env).map(|o| (o, src))
    }

    #[test]
    fn substitutes_and_defaults() {
        let (o, _) = run("a = \"${HOST}\"\nb = ${N}\nc = \"${MISSING:-x y}\"\n").unwrap();
        assert_eq!(o, "a = \"web-1\"\nb = 12\nc = \"x y\"\n");
    }

    #[test]
    fn escapes_inside_basic_strings() {
        let (o, _) = run("a = \"${QUOTE}\"").unwrap();
        let v: toml::Table = toml::from_str(&o).unwrap();
        assert_eq!(v["a"].as_str(), Some("a\"b\\c"));
    }

    #[test]
    fn comments_and_escapes_are_left_alone() {
        let (o, _) = run("# uses ${UNSET}\na = \"$${HOST}\" # ${ALSO_UNSET}\n").unwrap();
        assert_eq!(o, "# uses ${UNSET}\na = \"${HOST}\" # ${ALSO_UNSET}\n");
    }

    #[test]
    fn missing_variable_has_position() {
        let e = run("a = 1\nb = \"${NOPE}\"\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 6));
        assert!(e.message.contains("NOPE"), "{}", e.message);
    }

    #[test]
    fn positions_map_back_after_substitution() {
        let (o, src) = run("a = \"${HOST}\" ; b = 2").unwrap();
        let pos = o.find(';').unwrap();
        let orig = src.original_offset(pos);
        assert_eq!(&src.text[orig..orig + 1], ";");
    }
}
