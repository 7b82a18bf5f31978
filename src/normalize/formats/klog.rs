//! klog / glog lines (Kubernetes components, many Go programs).
//!
//! ```text
//! E1122 03:49:44.123456    2211 reflector.go:147] failed to list *v1.Pod: context deadline exceeded
//! ```
//!
//! `Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg` where `L` is `I`, `W`,
//! `E` or `F` (fatal, reported as `error`). The year is not written: it is
//! inferred as for syslog.

use crate::event::Level;
use crate::normalize::time;

/// One klog line, borrowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Klog<'a> {
    pub ts: i64,
    pub level: Level,
    pub thread: &'a str,
    /// `file.go:12`.
    pub source: &'a str,
    pub msg: &'a str,
}

/// Cheap pre-check for `auto`: a level letter and four digits.
pub fn looks_like(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 5
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
}

/// Parse one klog line; `None` if it is not one.
pub fn parse(line: &str, now_ms: i64) -> Option<Klog<'_>> {
    let level = match line.as_bytes().first()? {
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' | b'F' => Level::Error,
        _ => return None,
    };
    let (ts, used) = time::parse_klog(line.get(1..)?.as_bytes(), now_ms)?;
    let rest = line.get(1 + used..)?.trim_start_matches(' ');
    let (thread, rest) = rest.split_once(' ')?;
    if thread.is_empty() || !thread.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (source, msg) = rest.split_once(']')?;
    if !source.contains(':') || source.contains(' ') {
        return None;
    }
    Some(Klog {
        ts,
        level,
        thread,
        source,
        msg: msg.strip_prefix(' ').unwrap_or(msg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_319_384_000; // 2026-11-22T03:49:44Z

    #[test]
    fn klog_lines() {
        let k = parse(
            "E1122 03:49:44.123456    2211 reflector.go:147] failed: x] y",
            NOW,
        )
        .unwrap();
        assert_eq!((k.ts, k.level, k.thread), (NOW + 123, Level::Error, "2211"));
        assert_eq!((k.source, k.msg), ("reflector.go:147", "failed: x] y"));
        assert_eq!(
            parse("F1122 03:49:44.1 1 m.go:1] dead", NOW).unwrap().level,
            Level::Error
        );
        assert!(parse("I1122 03:49:44.123456 x m.go:1] no", NOW).is_none());
        assert!(parse("I1122 nope", NOW).is_none());
        assert!(parse("Info: hello", NOW).is_none());
    }
}
