//! CRI container logs (containerd, CRI-O): `TS STREAM TAGS MSG`.
//!
//! ```text
//! 2026-11-22T03:49:44.669794202Z stdout F GET /healthz 200
//! 2026-11-22T03:49:44.670012345Z stderr P first 16 KiB of a long line…
//! ```
//!
//! `TS` is RFC 3339 with nanoseconds, `STREAM` is `stdout` or `stderr`, and
//! `TAGS` is `:`-separated with the first tag `F` (full: the line ends
//! here) or `P` (partial: the runtime split a long line, more follows on
//! the same stream). Anything else is not CRI.

use std::borrow::Cow;

use super::{ContainerLine, Stream};
use crate::normalize::time;

/// Parse one CRI line; `None` if it is not one.
pub fn parse(line: &str) -> Option<ContainerLine<'_>> {
    let b = line.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let (ts, used) = time::parse_rfc3339(b)?;
    let rest = line.get(used..)?.strip_prefix(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let stream = Stream::parse(stream)?;
    let (tags, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match tags.split(':').next() {
        Some("F") => false,
        Some("P") => true,
        _ => return None,
    };
    Some(ContainerLine {
        ts: Some(ts),
        stream,
        partial,
        text: Cow::Borrowed(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_partial_and_not_cri() {
        let l = parse("2026-11-22T03:49:44.669794202Z stderr F boom: x y").unwrap();
        assert_eq!(
            (l.stream, l.partial, &*l.text),
            (Stream::Stderr, false, "boom: x y")
        );
        assert_eq!(l.ts, Some(1_795_319_384_669));
        let l = parse("2026-11-22T03:49:44Z stdout P part").unwrap();
        assert!(l.partial);
        assert_eq!(&*parse("2026-11-22T03:49:44Z stdout F").unwrap().text, "");
        assert_eq!(
            &*parse("2026-11-22T03:49:44Z stdout F:x  two").unwrap().text,
            " two"
        );
        assert!(parse("2026-11-22T03:49:44Z stdin F x").is_none());
        assert!(parse("2026-11-22T03:49:44Z stdout X x").is_none());
        assert!(parse("2026-11-22T03:49:44Z INFO started").is_none());
        assert!(parse("hello").is_none());
    }
}
