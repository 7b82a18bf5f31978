//! Access logs in the NCSA common / combined layout (nginx, Apache).
//!
//! ```text
//! 203.0.113.7 - alice [22/Nov/2026:03:49:44 +0000] "GET /api/v1/items?page=2 HTTP/1.1" 502 157 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"
//! ```
//!
//! The status gives the level (≥ 500 `error`, ≥ 400 `warn`, else `info`);
//! method, path, status, bytes, referer and agent go to `data`. The common
//! layout (no referer and agent) is accepted too; fields nginx appends
//! after the agent are ignored.

use crate::event::Level;
use crate::normalize::time;

/// One access-log line, borrowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Access<'a> {
    pub ts: i64,
    pub remote: &'a str,
    pub user: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status: u16,
    /// `-` (no body) is 0.
    pub bytes: u64,
    pub referer: Option<&'a str>,
    pub agent: Option<&'a str>,
}

impl Access<'_> {
    pub fn level(&self) -> Level {
        match self.status {
            500.. => Level::Error,
            400..=499 => Level::Warn,
            _ => Level::Info,
        }
    }
}

/// Cheap pre-check for `auto`: a host-like first byte, and `[` right after
/// the third space (host, ident, user, then the date).
pub fn looks_like(line: &str) -> bool {
    let b = line.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b':')
    {
        return false;
    }
    let mut spaces = 0;
    for (i, &c) in b.iter().enumerate().take(300) {
        if c == b' ' {
            spaces += 1;
            if spaces == 3 {
                return b.get(i + 1) == Some(&b'[');
            }
        }
    }
    false
}

fn dash(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// Parse one access-log line; `None` if it is not one.
pub fn parse(line: &str) -> Option<Access<'_>> {
    let (remote, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (ts, used) = time::parse_common_log(rest.as_bytes())?;
    let rest = rest.get(used..)?.strip_prefix("] ")?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if status.len() != 3 {
        return None;
    }
    let status: u16 = status.parse().ok()?;
    let (bytes, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let bytes = match bytes {
        "-" => 0,
        b => b.parse().ok()?,
    };
    let (referer, agent) = match quoted(rest) {
        Some((r, after)) => (
            dash(r),
            after
                .strip_prefix(' ')
                .and_then(quoted)
                .and_then(|(a, _)| dash(a)),
        ),
        None => (None, None),
    };
    let mut parts = request.splitn(3, ' ');
    let method = parts.next().and_then(dash);
    let path = parts.next();
    let protocol = parts.next();
    Some(Access {
        ts,
        remote,
        user: dash(user),
        method,
        path,
        protocol,
        status,
        bytes,
        referer,
        agent,
    })
}

/// A `"..."` field at the start of `s` (`\"` inside allowed): its contents
/// and what follows the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('"')?;
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&body[..i], &body[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_and_common() {
        let a = parse(r#"203.0.113.7 - alice [22/Nov/2026:03:49:44 +0000] "GET /a?b=\"c\" HTTP/1.1" 502 157 "-" "curl/8.5.0" "-" rt=0.2"#).unwrap();
        assert_eq!(a.ts, 1_795_319_384_000);
        assert_eq!(
            (a.method, a.path, a.status, a.bytes),
            (Some("GET"), Some(r#"/a?b=\"c\""#), 502, 157)
        );
        assert_eq!(
            (a.user, a.referer, a.agent),
            (Some("alice"), None, Some("curl/8.5.0"))
        );
        assert_eq!(a.level(), Level::Error);
        let a =
            parse(r#"::1 - - [22/Nov/2026:03:49:44 +0100] "POST /login HTTP/1.0" 404 -"#).unwrap();
        assert_eq!(
            (a.status, a.bytes, a.level(), a.agent),
            (404, 0, Level::Warn, None)
        );
        assert_eq!(a.ts, 1_795_319_384_000 - 3_600_000);
    }

    #[test]
    fn not_access_logs() {
        assert!(parse("hello world [x] y").is_none());
        assert!(parse(r#"h - - [22/Nov/2026:03:49:44 +0000] "GET / HTTP/1.1" 2000 1"#).is_none());
        assert!(parse(r#"h - - [22/Nov/2026:03:49:44 +0000] "GET / HTTP/1.1"#).is_none());
    }
}
