//! Invariants checked on arbitrary input, shared by the `cargo fuzz` target
//! (`fuzz/fuzz_targets/redact.rs`, nightly) and a proptest that runs on
//! stable (`tests/model/redact_props.rs`), so both exercise the same code.
//!
//! Each check panics with the offending input; a fuzzer reports the panic.

use super::{RedactionConfig, Redactor, StreamState};

/// A fixed private-key body: the canary that must never appear in output.
pub const CANARY_BODY: [&str; 3] = [
    "MIIEowIBAAKCAQEAzCanaryBodyLine1xxqhkiG9w0BAQEFAASCBKcwggSjAgEAAoI",
    "CanaryBodyLine2ZZ8cKjAoIBAQC7VJTUt9Us8cKjMYPRIVATEBODYLINEtwoqhkiG",
    "CanaryBodyLine3endQIDAQABAoIBAFq+/==",
];

fn redactor() -> Redactor {
    use std::sync::OnceLock;
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| match Redactor::new(&RedactionConfig::default()) {
        Ok(r) => r,
        Err(e) => panic!("default redaction config must build: {e}"),
    })
    .clone()
}

/// The other settings an input must survive: every PII kind on and
/// `mode = "hash"` (fixed test key), so tags and partial e-mails are checked
/// for idempotency too.
fn redactor_all_options() -> Redactor {
    use std::sync::OnceLock;
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        let text = "[redaction]\nmode = \"hash\"\nhash_key = \"selfcheck-key-0123456789\"\npii = [\"email\", \"card\", \"ipv4\", \"ipv6\", \"phone\"]\nemail = \"partial\"\n";
        let cfg = match crate::config::load_str(std::path::Path::new("selfcheck.toml"), text.into(), &|_| None) {
            Ok(l) => l.config.redaction,
            Err(e) => panic!("selfcheck config must load: {e}"),
        };
        match Redactor::new(&cfg) {
            Ok(r) => r,
            Err(e) => panic!("selfcheck redaction config must build: {e}"),
        }
    })
    .clone()
}

/// Redact `input` as `logship redact` does: line by line, one state.
pub fn redact_lines(r: &Redactor, input: &str) -> Vec<String> {
    let mut state = StreamState::default();
    input
        .split('\n')
        .map(|l| {
            let mut s = l.to_string();
            r.redact_msg(&mut state, &mut s);
            s
        })
        .collect()
}

/// Arbitrary bytes: no panic, one output line per input line, and a second
/// pass changes nothing (markers are never redacted again).
pub fn check_arbitrary(data: &[u8]) {
    let r = redactor();
    let input = String::from_utf8_lossy(data);
    let once = redact_lines(&r, &input);
    assert_eq!(
        once.len(),
        input.split('\n').count(),
        "line count: {input:?}"
    );
    for l in &once {
        assert!(!l.contains('\n'), "newline introduced: {input:?} -> {l:?}");
    }
    let joined = once.join("\n");
    let twice = redact_lines(&r, &joined);
    assert_eq!(twice, once, "not idempotent: {input:?}");
    let all = redactor_all_options();
    let once = redact_lines(&all, &input);
    let twice = redact_lines(&all, &once.join("\n"));
    assert_eq!(twice, once, "not idempotent with hash and PII: {input:?}");
    let mut data_map = serde_json::Map::new();
    data_map.insert("k".into(), serde_json::Value::String(input.to_string()));
    r.redact_data(&mut data_map);
}

/// A private key embedded in arbitrary text, its body lines cut at
/// `cuts` (byte offsets, taken modulo the line length) and each line given
/// `prefix`: no 12-byte window of the body survives.
pub fn check_pem(prefix: &str, cuts: &[usize], kind: &str, join_escaped: bool) {
    let r = redactor();
    // A logger prefix: whatever a timestamp, level and logger name are made
    // of (a prefix holding `-----END` would legitimately end the block).
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " :.[]_/,".contains(*c))
        .collect();
    let mut lines = vec![format!("-----BEGIN {kind}-----")];
    for (i, body) in CANARY_BODY.iter().enumerate() {
        let cut = cuts.get(i).map_or(body.len(), |c| c % (body.len() + 1));
        let (a, b) = body.split_at(cut);
        lines.push(a.to_string());
        if !b.is_empty() {
            lines.push(b.to_string());
        }
    }
    lines.push(format!("-----END {kind}-----"));
    let out = if join_escaped {
        let mut s = format!("{prefix}{{\"key\":\"{}\"}}", lines.join("\\n"));
        r.redact_msg(&mut StreamState::default(), &mut s);
        s
    } else {
        let text: Vec<String> = lines.iter().map(|l| format!("{prefix}{l}")).collect();
        redact_lines(&r, &text.join("\n")).join("\n")
    };
    for body in CANARY_BODY {
        for w in body.as_bytes().windows(12) {
            let w = std::str::from_utf8(w).unwrap_or("");
            if prefix.contains(w) {
                // The prefix is not key material even if it copies some.
                continue;
            }
            assert!(
                !out.contains(w),
                "PEM body leaked ({w:?}) with prefix {prefix:?} cuts {cuts:?}:\n{out}"
            );
        }
    }
}
