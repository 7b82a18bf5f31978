//! Redaction in the agent: secrets never reach a segment or the bucket, and
//! a PEM block interrupted by `kill -9` stays hidden after the restart (the
//! per-file PEM state is part of the checkpoint).

use crate::support;

use std::time::Duration;

use support::agent::{append, Agent};

const BODY: [&str; 3] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
];

fn assert_no_secret(a: &Agent, secrets: &[&str]) {
    let mut everything = String::new();
    for f in support::agent::files_under(&a.data()) {
        let name = f.to_string_lossy();
        if name.ends_with(".ndjson") {
            everything.push_str(&std::fs::read_to_string(&f).unwrap());
        }
    }
    for e in a.bucket_events() {
        everything.push_str(&e.to_json());
    }
    for s in secrets {
        assert!(!everything.contains(s), "secret {s:?} leaked");
    }
}

#[test]
fn secrets_are_redacted_before_anything_is_written() {
    let mut a = Agent::simple("");
    let lines = vec![
        "INFO connecting with password=hunter2hunter2 to db".to_string(),
        "{\"msg\":\"login\",\"user\":\"bob\",\"token\":\"tok_9f8e7d6c5b4a39281706\",\"nested\":{\"api_key\":\"k-123456789abcdef\"}}".to_string(),
        "GET https://deploy:s3cr3tPa55@example.com/hook Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345".to_string(),
        "aws key AKIAIOSFODNN7EXAMPLE in config".to_string(),
    ];
    append(&a.logs().join("app.log"), &lines);
    a.start();
    a.wait_local(4);
    assert!(a.term().success());
    assert_no_secret(
        &a,
        &[
            "hunter2hunter2",
            "tok_9f8e7d6c5b4a39281706",
            "k-123456789abcdef",
            "s3cr3tPa55",
            "abcdefghijklmnopqrstuvwxyz012345",
            "AKIAIOSFODNN7EXAMPLE",
        ],
    );
    let msgs: Vec<String> = a.bucket_events().into_iter().map(|e| e.to_json()).collect();
    assert!(msgs.iter().any(|m| m.contains("[REDACTED:")), "{msgs:?}");
}

#[test]
fn pem_block_interrupted_by_kill_9_stays_hidden() {
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    a.start();
    append(
        &log,
        &[
            "2026-01-01T00:00:00Z INFO loading key".to_string(),
            "2026-01-01T00:00:00Z DEBUG -----BEGIN PRIVATE KEY-----".to_string(),
            format!("2026-01-01T00:00:00Z DEBUG {}", BODY[0]),
        ],
    );
    a.wait_local(3);
    // Let a checkpoint record "inside a key block", then crash.
    std::thread::sleep(Duration::from_millis(300));
    a.kill9();
    append(
        &log,
        &[
            format!("2026-01-01T00:00:00Z DEBUG {}", BODY[1]),
            format!("2026-01-01T00:00:00Z DEBUG {}", BODY[2]),
            "2026-01-01T00:00:00Z DEBUG -----END PRIVATE KEY-----".to_string(),
            "2026-01-01T00:00:00Z INFO key loaded".to_string(),
        ],
    );
    a.start();
    a.wait_local(7);
    assert!(a.term().success());
    assert_no_secret(&a, &BODY);
    let msgs: Vec<String> = a.bucket_events().into_iter().map(|e| e.msg).collect();
    assert_eq!(msgs.len(), 7, "{msgs:?}");
    assert!(
        msgs[6].ends_with("key loaded"),
        "redaction resumes normally after END: {msgs:?}"
    );
}
