//! The unified event (SPEC §1) and its serialization.
//!
//! Every stage after the tailer speaks `Event`. Serialization is hand-written
//! rather than derived because it sits on the hot path of every line: the key
//! order is fixed by the contract, and writing straight into a reused buffer
//! avoids an allocation per line. Parsing back (`Event::from_json`) is only
//! used by tools (`query`, tests), so it goes through serde.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which family of logs an event belongs to; decides its segment layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    System,
    Build,
    Deploy,
    Action,
    Lifecycle,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::System,
        Tier::Build,
        Tier::Deploy,
        Tier::Action,
        Tier::Lifecycle,
    ];

    /// Position in [`Tier::ALL`], for tables indexed by tier.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::System => "system",
            Tier::Build => "build",
            Tier::Deploy => "deploy",
            Tier::Action => "action",
            Tier::Lifecycle => "lifecycle",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per tier, indexed by [`Tier`] (not by `tier as usize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerTier<T>([T; 5]);

impl<T> PerTier<T> {
    /// Every tier with its value, in [`Tier::ALL`] order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Tier, &mut T)> {
        Tier::ALL.into_iter().zip(self.0.iter_mut())
    }
}

impl<T> std::ops::Index<Tier> for PerTier<T> {
    type Output = T;
    fn index(&self, t: Tier) -> &T {
        &self.0[t as usize]
    }
}

impl<T> std::ops::IndexMut<Tier> for PerTier<T> {
    fn index_mut(&mut self, t: Tier) -> &mut T {
        &mut self.0[t as usize]
    }
}

/// The four correlation ids of an event (SPEC §1). Their names are the
/// event keys, the `id_fields` keys of a source and the path template
/// captures alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdField {
    ProjectId,
    BuildId,
    UserId,
    ReqId,
}

impl IdField {
    pub const ALL: [IdField; 4] = [
        IdField::ProjectId,
        IdField::BuildId,
        IdField::UserId,
        IdField::ReqId,
    ];

    /// The key in an event: `projectId`, `buildId`, `userId`, `reqId`.
    pub fn name(self) -> &'static str {
        match self {
            IdField::ProjectId => "projectId",
            IdField::BuildId => "buildId",
            IdField::UserId => "userId",
            IdField::ReqId => "reqId",
        }
    }

    pub fn parse(name: &str) -> Option<IdField> {
        IdField::ALL.into_iter().find(|f| f.name() == name)
    }

    /// JSON / logfmt fields that fill the id unless a source's `id_fields`
    /// says otherwise.
    pub fn default_fields(self) -> &'static [&'static str] {
        match self {
            IdField::ProjectId => &["projectId", "project_id"],
            IdField::BuildId => &["buildId", "build_id"],
            IdField::UserId => &["userId", "user_id"],
            IdField::ReqId => &["reqId", "req_id", "requestId", "request_id"],
        }
    }
}

impl fmt::Display for IdField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Severity of a line, reduced to the four levels of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    /// Position in [`Level::ALL`], for tables indexed by level.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maximum size of `msg` in bytes; longer messages are cut and suffixed.
pub const MAX_MSG_BYTES: usize = 256 * 1024;
/// Suffix appended to a message that was cut at [`MAX_MSG_BYTES`].
pub const TRUNCATED_SUFFIX: &str = "[TRUNCATED]";

/// One unified event. Field order here is the serialization order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub ts: i64,
    pub instance_id: String,
    pub tier: Tier,
    pub kind: String,
    pub lvl: Level,
    pub project_id: Option<String>,
    pub build_id: Option<String>,
    pub user_id: Option<String>,
    pub req_id: Option<String>,
    pub seq: u64,
    pub src: String,
    pub msg: String,
    pub data: Option<Map<String, Value>>,
}

impl Event {
    /// An empty event, meant to be filled field by field and reused.
    pub fn empty(tier: Tier) -> Event {
        Event {
            ts: 0,
            instance_id: String::new(),
            tier,
            kind: String::new(),
            lvl: Level::Info,
            project_id: None,
            build_id: None,
            user_id: None,
            req_id: None,
            seq: 0,
            src: String::new(),
            msg: String::new(),
            data: None,
        }
    }

    /// Parse one NDJSON line back into an event.
    pub fn from_json(line: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// One of the correlation ids.
    pub fn id(&self, field: IdField) -> Option<&str> {
        self.id_slot(field).as_deref()
    }

    fn id_slot(&self, field: IdField) -> &Option<String> {
        match field {
            IdField::ProjectId => &self.project_id,
            IdField::BuildId => &self.build_id,
            IdField::UserId => &self.user_id,
            IdField::ReqId => &self.req_id,
        }
    }

    /// One of the correlation ids, to set.
    pub fn id_mut(&mut self, field: IdField) -> &mut Option<String> {
        match field {
            IdField::ProjectId => &mut self.project_id,
            IdField::BuildId => &mut self.build_id,
            IdField::UserId => &mut self.user_id,
            IdField::ReqId => &mut self.req_id,
        }
    }

    /// Append this event as one JSON line (with the trailing `\n`) to `out`.
    ///
    /// Keys are written in contract order. Strings are escaped per RFC 8259;
    /// the fast path copies runs of plain bytes in one go.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.ts).as_bytes());
        out.extend_from_slice(b",\"instanceId\":");
        write_json_str(out, &self.instance_id);
        out.extend_from_slice(b",\"tier\":\"");
        out.extend_from_slice(self.tier.as_str().as_bytes());
        out.extend_from_slice(b"\",\"kind\":");
        write_json_str(out, &self.kind);
        out.extend_from_slice(b",\"lvl\":\"");
        out.extend_from_slice(self.lvl.as_str().as_bytes());
        out.extend_from_slice(b"\",\"projectId\":");
        write_opt_str(out, self.project_id.as_deref());
        out.extend_from_slice(b",\"buildId\":");
        write_opt_str(out, self.build_id.as_deref());
        out.extend_from_slice(b",\"userId\":");
        write_opt_str(out, self.user_id.as_deref());
        out.extend_from_slice(b",\"reqId\":");
        write_opt_str(out, self.req_id.as_deref());
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        out.extend_from_slice(b",\"src\":");
        write_json_str(out, &self.src);
        out.extend_from_slice(b",\"msg\":");
        write_json_str(out, &self.msg);
        out.extend_from_slice(b",\"data\":");
        match &self.data {
            None => out.extend_from_slice(b"null"),
            // Writing into a Vec cannot fail, and a Map<String, Value> always
            // serializes (string keys, finite numbers by construction).
            Some(map) => {
                let _ = serde_json::to_writer(&mut *out, map);
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// The event as one JSON line without the trailing newline.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256 + self.msg.len());
        self.write_json(&mut out);
        out.pop();
        // Only valid UTF-8 is ever written: every source is a &str.
        String::from_utf8(out).unwrap_or_default()
    }
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.extend_from_slice(b"null"),
        Some(s) => write_json_str(out, s),
    }
}

/// Write `s` as a JSON string literal.
///
/// Most bytes of a log line need no escaping, so the scan looks at sixteen
/// bytes at a time ([`clean_until`]) and copies each clean run in one go;
/// a string with nothing to escape (nearly every one) is one scan and one
/// copy. This runs four times per event (`instanceId`, `kind`, `src`,
/// `msg`): short strings are checked as one padded word, not byte by byte.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let i = clean_until(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else {
            break;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// The first index at or after `from` of a byte that JSON must escape
/// (`"`, `\\`, below 0x20), or `b.len()`.
#[inline]
fn clean_until(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 16) {
        let (lo, hi) = chunk.split_at(8);
        let lo = escape_bits(u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])));
        let hi = escape_bits(u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])));
        if lo != 0 {
            return i + (lo.trailing_zeros() / 8) as usize;
        }
        if hi != 0 {
            return i + 8 + (hi.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    if let Some(chunk) = b.get(i..i + 8) {
        let m = escape_bits(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    // Fewer than 8 left.
    b[i..]
        .iter()
        .position(|&c| matches!(c, b'"' | b'\\' | 0x00..=0x1f))
        .map_or(b.len(), |p| i + p)
}

/// The top bit of each byte of `w` that is `"`, `\\` or below 0x20.
///
/// Classic SWAR tests: `(v - 0x01..) & !v & 0x80..` flags the bytes of `v`
/// that are zero, and with `0x20..` in place of `0x01..` those below 0x20.
/// A borrow can flag a byte *above* a flagged one, never below, so the
/// lowest flag is exact: callers only use the lowest (`trailing_zeros`).
#[inline]
fn escape_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = zero_byte(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(w ^ (ONES * u64::from(b'\\')));
    control | quote | backslash
}

/// Cut `msg` to at most [`MAX_MSG_BYTES`] (on a char boundary) and append the
/// truncation marker. Returns whether it was cut.
pub fn truncate_msg(msg: &mut String) -> bool {
    if msg.len() <= MAX_MSG_BYTES {
        return false;
    }
    let mut cut = MAX_MSG_BYTES;
    while !msg.is_char_boundary(cut) {
        cut -= 1;
    }
    msg.truncate(cut);
    msg.push_str(TRUNCATED_SUFFIX);
    true
}

/// Whether an id may be used raw as a path or key component (SPEC §2).
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The path component used for an id: the id itself when safe, `_none` when
/// absent, `_invalid-<16 hex of xxh3>` otherwise. Deterministic, so the same
/// bad id always lands in the same place.
pub fn path_component(id: Option<&str>) -> std::borrow::Cow<'_, str> {
    match id {
        None => std::borrow::Cow::Borrowed("_none"),
        Some(id) if is_safe_id(id) => std::borrow::Cow::Borrowed(id),
        Some(id) => {
            let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
            std::borrow::Cow::Owned(format!("_invalid-{h:016x}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::empty(Tier::Build);
        e.ts = 1736812345678;
        e.instance_id = "host-1".into();
        e.kind = "line".into();
        e.lvl = Level::Error;
        e.build_id = Some("b-42".into());
        e.seq = 7;
        e.src = "builds".into();
        e.msg = "quote \" backslash \\ nl \n ctl \u{1} é".into();
        e
    }

    #[test]
    fn serializes_in_contract_order_and_round_trips() {
        let e = sample();
        let s = e.to_json();
        let keys = [
            "ts",
            "instanceId",
            "tier",
            "kind",
            "lvl",
            "projectId",
            "buildId",
            "userId",
            "reqId",
            "seq",
            "src",
            "msg",
            "data",
        ];
        let mut last = 0;
        for k in keys {
            let pos = s.find(&format!("\"{k}\":")).expect(k);
            assert!(pos >= last, "{k} out of order in {s}");
            last = pos;
        }
        assert_eq!(Event::from_json(&s).unwrap(), e);
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["msg"], "quote \" backslash \\ nl \n ctl \u{1} é");
    }

    #[test]
    fn data_round_trips() {
        let mut e = sample();
        let mut m = Map::new();
        m.insert("deploymentId".into(), Value::from("d-1"));
        m.insert("n".into(), Value::from(3));
        e.data = Some(m);
        assert_eq!(Event::from_json(&e.to_json()).unwrap(), e);
    }

    /// The byte-at-a-time escaper the word-at-a-time one replaced.
    fn reference_json_str(s: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s.as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x00..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn escaping_matches_the_byte_at_a_time_reference() {
        // Every special byte at every offset of a word, next to multi-byte
        // UTF-8 (high bytes must not trip the control-byte test).
        let specials: Vec<char> = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', ' ', '~', '\u{7f}', 'é', '€', '😀'])
            .collect();
        for len in 0..20 {
            for pos in 0..=len {
                for &c in &specials {
                    let mut s: String = "aé€😀bcdefghijklmnop".chars().cycle().take(len).collect();
                    let idx = s.char_indices().nth(pos).map_or(s.len(), |(i, _)| i);
                    s.insert(idx, c);
                    let mut out = Vec::new();
                    write_json_str(&mut out, &s);
                    assert_eq!(out, reference_json_str(&s), "{s:?}");
                    let back: String = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, s);
                }
            }
        }
        let all: String = (0u8..0x80).map(char::from).cycle().take(1000).collect();
        let mut out = Vec::new();
        write_json_str(&mut out, &all);
        assert_eq!(out, reference_json_str(&all));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut m = "é".repeat(MAX_MSG_BYTES);
        assert!(truncate_msg(&mut m));
        assert!(m.ends_with(TRUNCATED_SUFFIX));
        assert!(m.len() <= MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
        let mut short = "ok".to_string();
        assert!(!truncate_msg(&mut short));
    }

    #[test]
    fn unsafe_ids_are_replaced() {
        assert_eq!(path_component(Some("b-1.2_x")), "b-1.2_x");
        assert_eq!(path_component(None), "_none");
        for bad in ["../../etc/passwd", ".", "..", "", "a/b", &"x".repeat(129)] {
            let c = path_component(Some(bad));
            assert!(c.starts_with("_invalid-"), "{bad:?} -> {c}");
            assert!(is_safe_id(&c));
        }
        assert_eq!(path_component(Some("a/b")), path_component(Some("a/b")));
        assert_ne!(path_component(Some("a/b")), path_component(Some("a/c")));
    }

    #[test]
    fn json_str_escapes_every_byte_at_every_offset() {
        for c in 0u8..0x80 {
            for len in 0..40 {
                for at in 0..len {
                    let mut b = vec![b'x'; len];
                    b[at] = c;
                    let s = String::from_utf8(b).unwrap();
                    let mut out = Vec::new();
                    write_json_str(&mut out, &s);
                    assert_eq!(out, reference_json_str(&s), "{c:#x} at {at} of {len}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn json_str_agrees_with_the_bytewise_escape(s in "(\\PC|[\"\\\\\n\r\t\u{0}-\u{1f}]){0,80}") {
            let mut out = b"prefix".to_vec();
            write_json_str(&mut out, &s);
            let mut want = b"prefix".to_vec();
            want.extend(reference_json_str(&s));
            proptest::prop_assert_eq!(out, want);
        }
    }
}
