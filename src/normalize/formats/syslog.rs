//! Syslog lines: RFC 5424, RFC 3164 with a `<PRI>`, and the RFC 3164 form
//! rsyslog and journald write to files (no `<PRI>`).
//!
//! ```text
//! <165>1 2026-11-22T03:49:44.003Z web-1 nginx 2211 ID47 [meta x="1"] upstream timed out
//! <34>Nov 22 03:49:44 web-1 sshd[2211]: Failed password for root
//! Nov 22 03:49:44 web-1 kernel: Out of memory: Killed process 4242
//! ```
//!
//! The severity of `<PRI>` gives the level; host, app (tag) and pid go to
//! `data`. Without a `<PRI>` the line must still have a host and a tag
//! ending in `:` after the timestamp, so ordinary text that merely starts
//! with a syslog-style date is not taken for syslog.

use crate::event::Level;
use crate::normalize::time;

/// One syslog line, borrowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Syslog<'a> {
    /// `None` for an RFC 5424 nil (`-`) timestamp.
    pub ts: Option<i64>,
    /// Severity from `<PRI>` (0 emerg .. 7 debug), if written.
    pub severity: Option<u8>,
    pub host: Option<&'a str>,
    pub app: Option<&'a str>,
    pub pid: Option<&'a str>,
    /// RFC 5424 MSGID and structured data, if not `-`.
    pub msgid: Option<&'a str>,
    pub sd: Option<&'a str>,
    pub msg: &'a str,
}

impl Syslog<'_> {
    /// The level the severity says (`None` without a `<PRI>`).
    pub fn level(&self) -> Option<Level> {
        self.severity.map(|s| match s {
            0..=3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            _ => Level::Debug,
        })
    }
}

/// Cheap pre-check for `auto`: `<` or an upper-case month initial.
pub fn looks_like(line: &str) -> bool {
    matches!(line.as_bytes().first(), Some(b'<' | b'A'..=b'Z'))
}

/// Parse one syslog line; `None` if it is not one.
pub fn parse(line: &str, now_ms: i64) -> Option<Syslog<'_>> {
    let (severity, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let end = r.bytes().take(4).position(|c| c == b'>')?;
            let pri: u16 = r[..end].parse().ok().filter(|p| *p <= 191)?;
            (Some((pri % 8) as u8), &r[end + 1..])
        }
        None => (None, line),
    };
    if let Some(r5424) = rest.strip_prefix("1 ") {
        if let Some(s) = rfc5424(r5424, severity) {
            return Some(s);
        }
    }
    rfc3164(rest, severity, now_ms)
}

fn nil(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

fn rfc5424(rest: &str, severity: Option<u8>) -> Option<Syslog<'_>> {
    let mut it = rest.splitn(6, ' ');
    let ts_s = it.next()?;
    let host = it.next()?;
    let app = it.next()?;
    let pid = it.next()?;
    let msgid = it.next()?;
    let tail = it.next().unwrap_or("");
    let ts = match ts_s {
        "-" => None,
        _ => match time::parse_rfc3339(ts_s.as_bytes())? {
            (t, used) if used == ts_s.len() => Some(t),
            _ => return None,
        },
    };
    let (sd, msg) = structured_data(tail)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Syslog {
        ts,
        severity,
        host: nil(host),
        app: nil(app),
        pid: nil(pid),
        msgid: nil(msgid),
        sd: nil(sd),
        msg,
    })
}

/// Split `-` or `[id k="v" ...][...]` from the message after it.
fn structured_data(s: &str) -> Option<(&str, &str)> {
    if let Some(msg) = s.strip_prefix('-') {
        return Some(("-", msg.strip_prefix(' ').unwrap_or(msg)));
    }
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let (mut i, mut quoted, mut escaped) = (0, false, false);
    while i < b.len() {
        let c = b[i];
        if escaped {
            escaped = false;
        } else if quoted {
            match c {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b']' && b.get(i + 1) != Some(&b'[') {
            let msg = &s[i + 1..];
            return Some((&s[..=i], msg.strip_prefix(' ').unwrap_or(msg)));
        }
        i += 1;
    }
    None
}

fn rfc3164(rest: &str, severity: Option<u8>, now_ms: i64) -> Option<Syslog<'_>> {
    let b = rest.as_bytes();
    let (ts, used) = if b.first().is_some_and(u8::is_ascii_digit) {
        // Some relays write an RFC 3339 stamp in the 3164 layout.
        time::parse_rfc3339(b)?
    } else {
        time::parse_syslog(b, now_ms)?
    };
    let rest = rest.get(used..)?.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    if host.is_empty() || host.ends_with(':') {
        return None;
    }
    // TAG is at most 32 characters, then `[pid]` and/or `:`.
    let tag_end = rest
        .bytes()
        .take(48)
        .position(|c| c == b':' || c == b'[' || c == b' ')?;
    let app = &rest[..tag_end];
    if app.is_empty() {
        return None;
    }
    let mut after = &rest[tag_end..];
    let mut pid = None;
    if let Some(r) = after.strip_prefix('[') {
        let close = r.find(']')?;
        pid = Some(&r[..close]);
        after = &r[close + 1..];
    }
    let msg = after.strip_prefix(':')?;
    Some(Syslog {
        ts: Some(ts),
        severity,
        host: Some(host),
        app: Some(app),
        pid,
        msgid: None,
        sd: None,
        msg: msg.strip_prefix(' ').unwrap_or(msg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_319_384_000; // 2026-11-22T03:49:44Z

    #[test]
    fn rfc5424_lines() {
        let s = parse(
            r#"<165>1 2026-11-22T03:49:44.003Z web-1 nginx 2211 ID47 [m x="a]b"][n y="2"] upstream timed out"#,
            NOW,
        )
        .unwrap();
        assert_eq!(s.ts, Some(NOW + 3));
        assert_eq!((s.severity, s.level()), (Some(5), Some(Level::Info)));
        assert_eq!(
            (s.host, s.app, s.pid),
            (Some("web-1"), Some("nginx"), Some("2211"))
        );
        assert_eq!(s.sd, Some(r#"[m x="a]b"][n y="2"]"#));
        assert_eq!(s.msg, "upstream timed out");
        let s = parse("<11>1 2026-11-22T03:49:44Z h app - - - disk failed", NOW).unwrap();
        assert_eq!(
            (s.level(), s.pid, s.msg),
            (Some(Level::Error), None, "disk failed")
        );
    }

    #[test]
    fn rfc3164_lines() {
        let s = parse("<34>Nov 22 03:49:44 web-1 sshd[2211]: Failed password", NOW).unwrap();
        assert_eq!((s.ts, s.level()), (Some(NOW), Some(Level::Error)));
        assert_eq!(
            (s.host, s.app, s.pid),
            (Some("web-1"), Some("sshd"), Some("2211"))
        );
        assert_eq!(s.msg, "Failed password");
        let s = parse("Nov  2 03:49:44 web-1 kernel: Out of memory", NOW).unwrap();
        assert_eq!(
            (s.severity, s.app, s.msg),
            (None, Some("kernel"), "Out of memory")
        );
    }

    #[test]
    fn not_syslog() {
        assert!(parse("Nov 22 03:49:44 something happened here", NOW).is_none());
        assert!(parse("<999>Nov 22 03:49:44 h a: m", NOW).is_none());
        assert!(parse("Hello world", NOW).is_none());
        assert!(parse("<", NOW).is_none());
    }
}
