//! One line path: the agent and `logship normalize` turn the same file into
//! the same events, byte for byte (`seq` and `instanceId` aside) — long
//! lines, invalid UTF-8, CRLF endings, PEM blocks, JSON and logfmt included.

use std::fs;
use std::process::{Command, Stdio};

use logship::event::{Event, MAX_MSG_BYTES, TRUNCATED_SUFFIX};

use crate::support::agent::{parse_lines, Agent, BIN};

/// Every line carries its own timestamp, so `ts` does not depend on when
/// it was read.
fn input() -> Vec<u8> {
    let mut f: Vec<u8> = Vec::new();
    f.extend_from_slice(b"2026-01-02T03:04:05Z INFO plain text line\n");
    f.extend_from_slice(b"2026-01-02T03:04:06Z WARN crlf line\r\n");
    f.extend_from_slice(b"2026-01-02T03:04:07Z ERROR bad \xff\xfe bytes\n");
    f.extend_from_slice(b"2026-01-02T03:04:07Z cr inside \r a line\r\n");
    f.extend_from_slice(b"2026-01-02T03:04:07Z two cr at the end\r\r\n");
    f.extend_from_slice(
        br#"{"time":"2026-01-02T03:04:08Z","level":"error","msg":"db down password=hunter2","user_id":"u1","extra":{"token":"tok_abcdefghijklmnop"}}"#,
    );
    f.push(b'\n');
    f.extend_from_slice(
        b"ts=2026-01-02T03:04:09Z level=warn msg=\"slow query\" reqId=r-1 api_key=abcdef0123456789abcdef\n",
    );
    f.extend_from_slice(b"2026-01-02T03:04:10Z ERROR -----BEGIN RSA PRIVATE KEY-----\n");
    f.extend_from_slice(
        b"2026-01-02T03:04:10Z MIIEowIBAAKCAQEAv0Yb3pQ7sSECRETKEYMATERIALxyzXYZ0123456789abcd\n",
    );
    f.extend_from_slice(b"2026-01-02T03:04:10Z SECRETKEYMATERIALTWOabcdefghijklmnopqrstu\r\n");
    f.extend_from_slice(b"2026-01-02T03:04:10Z -----END RSA PRIVATE KEY-----\n");
    f.extend_from_slice(b"2026-01-02T03:04:11Z ");
    f.extend(std::iter::repeat_n(b'y', 300 * 1024));
    f.push(b'\n');
    // Over the line limit: cut before it is parsed, so it is text, not JSON.
    f.extend_from_slice(br#"{"time":"2026-01-02T03:04:11Z","msg":""#);
    f.extend(std::iter::repeat_n(b'z', 300 * 1024));
    f.extend_from_slice(b"\"}\n");
    f.extend_from_slice(
        br#"{"ts":1767323052000,"tier":"system","kind":"meta","lvl":"warn","msg":"already unified","seq":5}"#,
    );
    f.push(b'\n');
    f.extend_from_slice(b"2026-01-02T03:04:12Z last line\n");
    f
}

/// The event with the fields that may differ between the two runs blanked:
/// `seq`, `instanceId`, and the read time of the one line that has no
/// timestamp once cut (the over-long JSON line).
fn comparable(mut e: Event) -> String {
    e.seq = 0;
    e.instance_id.clear();
    if e.msg.starts_with("{\"time\"") {
        e.ts = 0;
    }
    e.to_json()
}

#[test]
fn agent_and_normalize_cli_write_the_same_events() {
    let input = input();
    let n_lines = input.split(|&b| b == b'\n').count() - 1;
    let mut a = Agent::simple("");
    fs::write(a.logs().join("app.log"), &input).unwrap();
    a.start();
    a.wait_local(n_lines);
    // One segment (all system tier, far below max_bytes), in write order.
    let agent = a.local_events();
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());

    let out = Command::new(BIN)
        .args(["normalize", "--tier", "system", "--src", "app", "-c"])
        .arg(&a.config)
        .stdin(fs::File::open(a.logs().join("app.log")).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run logship normalize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = parse_lines(&out.stdout);
    assert_eq!(agent.len(), n_lines);
    assert_eq!(cli.len(), n_lines);

    // What the path must have done, so equal outputs are not equally wrong.
    let long = cli.iter().find(|e| e.msg.contains("yyyy")).unwrap();
    assert!(long.msg.ends_with(TRUNCATED_SUFFIX));
    assert_eq!(long.msg.len(), MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
    assert!(cli
        .iter()
        .any(|e| e.msg.contains("bad \u{fffd}\u{fffd} bytes")));
    assert!(cli.iter().any(|e| e.msg.ends_with("WARN crlf line")));
    assert!(cli.iter().any(|e| e.msg.ends_with("two cr at the end\r")));
    let cut_json = cli.iter().find(|e| e.msg.contains("zzzz")).unwrap();
    assert!(cut_json.msg.starts_with("{\"time\"") && cut_json.msg.ends_with(TRUNCATED_SUFFIX));
    assert!(cli.iter().all(|e| !e.msg.contains("SECRETKEYMATERIAL")));
    assert!(cli.iter().all(|e| !e.to_json().contains("hunter2")));
    assert!(cli
        .iter()
        .all(|e| !e.to_json().contains("tok_abcdefghijklmnop")));
    assert!(cli.iter().any(|e| e.seq == 5 && e.kind == "meta"));

    for (x, y) in agent.into_iter().zip(cli) {
        assert_eq!(comparable(x), comparable(y));
    }
}

/// The same with records: container lines of both streams, partial lines
/// and stack traces of several languages through `format = "auto"` and
/// `[sources.multiline] mode = "auto"`, agent and CLI alike.
#[test]
fn agent_and_normalize_cli_group_the_same_records() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
    let mut input = Vec::new();
    for f in [
        "java.log",
        "cri.log",
        "python.log",
        "docker.log",
        "go.log",
        "php.log",
    ] {
        input.extend(fs::read(dir.join(f)).unwrap());
    }
    let out = Command::new(BIN)
        .args([
            "normalize",
            "--tier",
            "system",
            "--src",
            "app",
            "--multiline",
            "auto",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&input)?;
            c.wait_with_output()
        })
        .expect("run logship normalize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = parse_lines(&out.stdout);
    // What grouping must have done, so equal outputs are not equally wrong.
    assert!(cli
        .iter()
        .any(|e| e.msg.contains("\nCaused by: org.hibernate")));
    assert!(cli
        .iter()
        .any(|e| e.src == "stderr" && e.msg.contains("\n\tat com.acme.billing.Ledger")));
    assert!(cli
        .iter()
        .any(|e| e.msg.starts_with("panic: ") && e.msg.contains("\ngoroutine 1 [IO wait]:")));
    let n_lines = input.split(|&b| b == b'\n').count() - 1;
    assert!(
        cli.len() < n_lines / 2,
        "{} records of {n_lines} lines",
        cli.len()
    );

    let mut a = Agent::simple("format = \"auto\"\n[sources.multiline]\nmode = \"auto\"\n");
    fs::write(a.logs().join("app.log"), &input).unwrap();
    a.start();
    // The last record is complete after `timeout` (1s) without a new line.
    a.wait_local(cli.len());
    let agent = a.local_events();
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());
    assert_eq!(agent.len(), cli.len());
    // Records whose first line has no time carry the read time.
    let fixed = |mut e: Event| {
        if e.ts > 1_795_400_000_000 {
            e.ts = 0;
        }
        comparable(e)
    };
    for (x, y) in agent.into_iter().zip(cli) {
        assert_eq!(fixed(x), fixed(y));
    }
}
