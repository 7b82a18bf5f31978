//! Property tests of redaction: a PEM private-key body never survives, however
//! its lines are cut, prefixed or chunked; and the fuzz target's checks,
//! run on stable with proptest-generated input.

use logship::redact::selfcheck::{check_arbitrary, check_pem, redact_lines, CANARY_BODY};
use logship::redact::{RedactionConfig, Redactor, StreamState};
use proptest::prelude::*;

const KINDS: &[&str] = &[
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PRIVATE KEY",
    "PGP PRIVATE KEY BLOCK",
];

/// Compiling the rules is the slow part in debug builds: once per process.
fn redactor() -> Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&RedactionConfig::default()).unwrap())
        .clone()
}

fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}Z (INFO|ERROR|DEBUG|WARN) [a-z.]{0,12}: ",
        "\\[[a-z]{1,8}\\] ",
        "[A-Za-z0-9 :.\\[\\]_]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn redact_pem_body_never_survives_cuts_and_prefixes(
        prefix in prefix(),
        cuts in proptest::collection::vec(0usize..80, 3),
        kind in proptest::sample::select(KINDS),
        escaped in any::<bool>(),
    ) {
        check_pem(&prefix, &cuts, kind, escaped);
    }

    /// The same key, lines grouped into messages of random sizes (as a JSON
    /// source with escaped newlines delivers them), with a shared state.
    #[test]
    fn redact_pem_body_never_survives_chunking(
        chunks in proptest::collection::vec(1usize..4, 1..6),
        kind in proptest::sample::select(KINDS),
    ) {
        let r = redactor();
        let mut lines = vec![format!("-----BEGIN {kind}-----")];
        lines.extend(CANARY_BODY.iter().map(|s| s.to_string()));
        lines.push(format!("-----END {kind}-----"));
        lines.push("after".into());
        let mut state = StreamState::default();
        let mut out = Vec::new();
        let mut rest = &lines[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            let mut msg = rest[..n].join("\n");
            r.redact_msg(&mut state, &mut msg);
            out.push(msg);
            rest = &rest[n..];
        }
        let all = out.join("\n");
        for body in CANARY_BODY {
            prop_assert!(!all.contains(&body[..12]), "{}", all);
        }
        prop_assert!(all.ends_with("after"), "{}", all);
        prop_assert!(!state.in_private_key());
    }

    #[test]
    fn redact_fuzz_body_on_stable(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_arbitrary(&data);
    }

    #[test]
    fn redact_fuzz_body_on_stable_texty(s in "([a-zA-Z_]{0,8}(=|: |\":\"| )[A-Za-z0-9+/=_.\\-@:]{0,40}[ \n&?]){0,8}") {
        check_arbitrary(s.as_bytes());
    }
}

#[test]
fn redact_lines_keeps_count() {
    let r = redactor();
    assert_eq!(redact_lines(&r, "a\n\nb\n").len(), 4);
}
