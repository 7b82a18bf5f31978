//! Docker's `json-file` driver: one JSON object per line.
//!
//! ```text
//! {"log":"listening on :8080\n","stream":"stdout","time":"2026-11-22T03:49:44.669794202Z"}
//! ```
//!
//! The daemon splits lines longer than 16 KiB: every piece but the last
//! lacks the trailing `\n` in `log`, so a `log` without it is *partial* and
//! is joined with the following pieces of the same stream.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ContainerLine, Stream};
use crate::normalize::time;

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

/// Cheap pre-check for `auto`: the driver always writes `log` first.
pub fn looks_like(line: &str) -> bool {
    line.starts_with("{\"log\":")
}

/// Parse one json-file line; `None` if it is not one (other JSON included).
pub fn parse(line: &str) -> Option<ContainerLine<'_>> {
    let raw: Raw<'_> = serde_json::from_str(line).ok()?;
    let stream = Stream::parse(&raw.stream)?;
    let ts = raw
        .time
        .as_deref()
        .and_then(|t| time::parse_rfc3339(t.as_bytes()))
        .map(|(t, _)| t);
    let (text, partial) = match raw.log {
        Cow::Borrowed(s) => match strip_newline(s) {
            Some(s) => (Cow::Borrowed(s), false),
            None => (Cow::Borrowed(s), true),
        },
        Cow::Owned(mut s) => {
            let partial = strip_newline(&s).is_none();
            if !partial {
                let keep = strip_newline(&s).map_or(s.len(), str::len);
                s.truncate(keep);
            }
            (Cow::Owned(s), partial)
        }
    };
    Some(ContainerLine {
        ts,
        stream,
        partial,
        text,
    })
}

fn strip_newline(s: &str) -> Option<&str> {
    let s = s.strip_suffix('\n')?;
    Some(s.strip_suffix('\r').unwrap_or(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_partial_and_other_json() {
        let l = parse(r#"{"log":"a \"q\"\n","stream":"stderr","time":"2026-11-22T03:49:44.5Z"}"#)
            .unwrap();
        assert_eq!(
            (l.stream, l.partial, &*l.text),
            (Stream::Stderr, false, "a \"q\"")
        );
        assert_eq!(l.ts, Some(1_795_319_384_500));
        let l = parse(r#"{"log":"part","stream":"stdout","time":"x"}"#).unwrap();
        assert!(l.partial && l.ts.is_none());
        assert!(parse(r#"{"log":"x\n","stream":"stdin"}"#).is_none());
        assert!(parse(r#"{"msg":"x"}"#).is_none());
        assert!(parse("{\"log\":").is_none());
    }
}
