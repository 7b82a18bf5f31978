//! A notification's identity (SPEC §8): SHA-1 over the rule, tier, kind,
//! `data.deploymentId` when present, and the normalized message.
//!
//! Normalization replaces what varies between occurrences of "the same"
//! problem — URLs, emails, timestamps, UUIDs, ULIDs, hex ids, numbers of four
//! or more digits — by placeholders, so `build 7f3a9c21e0 failed after 1234ms`
//! and `build 0b1c2d3e4f failed after 5678ms` share a fingerprint. The parts
//! are joined with U+001F (unit separator), which cannot appear in a rule
//! name or tier and is vanishingly rare in messages, so `("a b", "c")` and
//! `("a", "b c")` never collide.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use sha1::{Digest, Sha1};

use crate::event::Event;

/// One alternation, tried left to right at each position: earlier
/// alternatives win, so a URL's digits are not also a `<num>`. ASCII classes
/// and word boundaries (`(?-u:\b)`) throughout: ids are ASCII, and Unicode
/// tables would make the automaton many times larger and slower.
static VARYING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?-u:\b)(?P<url>[a-zA-Z][a-zA-Z0-9+.-]*://\S+)",
        r"|(?-u:\b)(?P<email>[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)",
        r"|(?-u:\b)(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?(?-u:\b)",
        r"|(?-u:\b)[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?-u:\b))",
        r"|(?-u:\b)(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?-u:\b)",
        r"|(?-u:\b)(?P<ulid>[0-7][0-9A-HJKMNP-TV-Z]{25})(?-u:\b)",
        r"|(?-u:\b)(?P<hex>(?:0x)?[0-9a-fA-F]{6,})(?-u:\b)",
        r"|(?P<num>[0-9]{4,})",
    ))
    .unwrap_or_else(|e| panic!("fingerprint regex is a constant and compiles: {e}"))
});

/// Compile the normalization regex now rather than on the first alert.
pub fn warm_up() {
    LazyLock::force(&VARYING);
}

/// `msg` with its varying parts replaced by `<url>`, `<email>`, `<ts>`,
/// `<uuid>`, `<ulid>`, `<hex>`, `<num>`.
pub fn normalize(msg: &str) -> Cow<'_, str> {
    if !may_vary(msg) {
        return Cow::Borrowed(msg);
    }
    VARYING.replace_all(msg, |c: &Captures<'_>| {
        for name in ["url", "email", "ts", "uuid", "ulid"] {
            if c.name(name).is_some() {
                return format!("<{name}>");
            }
        }
        if let Some(h) = c.name("hex") {
            let s = h.as_str();
            let digits = s.bytes().filter(u8::is_ascii_digit).count();
            return if digits == s.len() {
                if digits >= 4 {
                    "<num>".into()
                } else {
                    s.into()
                }
            } else if digits == 0 && s.len() < 8 {
                // A word that happens to be hex letters ("facade", "decade");
                // from 8 letters on it is an id that happens to lack digits.
                s.to_string()
            } else {
                "<hex>".into()
            };
        }
        "<num>".into()
    })
}

/// Whether `msg` could contain a placeholder: every pattern needs a digit,
/// `@`, `:` (URLs, times), `-` (a UUID of letters only) or a run of 8+ hex
/// letters. Most plain messages fail this one-pass scan and skip the regex.
fn may_vary(msg: &str) -> bool {
    let mut hex_run = 0;
    for b in msg.bytes() {
        if b.is_ascii_digit() || matches!(b, b'@' | b':' | b'-') {
            return true;
        }
        hex_run = if b.is_ascii_hexdigit() {
            hex_run + 1
        } else {
            0
        };
        if hex_run >= 8 {
            return true;
        }
    }
    false
}

/// 40 lowercase hex chars.
pub fn fingerprint(rule: &str, event: &Event) -> String {
    let deployment = event
        .data
        .as_ref()
        .and_then(|d| d.get("deploymentId"))
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    fingerprint_parts(
        rule,
        event.tier.as_str(),
        &event.kind,
        deployment.as_deref(),
        &event.msg,
    )
}

/// The same from parts (absence rules have no event).
pub fn fingerprint_parts(
    rule: &str,
    tier: &str,
    kind: &str,
    deployment_id: Option<&str>,
    msg: &str,
) -> String {
    let mut h = Sha1::new();
    for part in [
        rule,
        tier,
        kind,
        deployment_id.unwrap_or(""),
        &normalize(msg),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(40);
    for b in h.finalize() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tier;

    #[test]
    fn placeholders() {
        let cases = [
            ("build 7f3a9c21e0 failed", "build <hex> failed"),
            ("took 12345 ms, 12 retries", "took <num> ms, 12 retries"),
            ("id 123e4567-e89b-12d3-a456-426614174000 x", "id <uuid> x"),
            ("seg 01ARZ3NDEKTSV4RRFFQ69G5FAV done", "seg <ulid> done"),
            (
                "GET https://api.example.com/v1/x?id=99999 failed",
                "GET <url> failed",
            ),
            (
                "mail bob.smith+x@example.co.uk bounced",
                "mail <email> bounced",
            ),
            (
                "at 2025-01-13T23:59:01.123Z and 12:01:02",
                "at <ts> and <ts>",
            ),
            ("on 2025-01-13 only", "on <ts> only"),
            ("a facade, a decade", "a facade, a decade"),
            ("build abdbabcb failed", "build <hex> failed"),
            ("ptr 0xdeadbeef", "ptr <hex>"),
            ("b-4321 exit 1", "b-<num> exit 1"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
    }

    #[test]
    fn same_problem_same_fingerprint() {
        let mut a = Event::empty(Tier::Build);
        a.kind = "line".into();
        a.msg = "build 7f3a9c21e0 failed after 1234ms".into();
        let mut b = a.clone();
        b.msg = "build 0b1c2d3e4f failed after 98765ms".into();
        assert_eq!(fingerprint("r", &a), fingerprint("r", &b));
        assert_eq!(fingerprint("r", &a).len(), 40);
        assert_ne!(fingerprint("r", &a), fingerprint("other", &a));
        let mut c = a.clone();
        let mut data = serde_json::Map::new();
        data.insert("deploymentId".into(), "d-1".into());
        c.data = Some(data);
        assert_ne!(fingerprint("r", &a), fingerprint("r", &c));
    }
}
