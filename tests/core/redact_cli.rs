//! Black-box tests of `logship redact`: one output line per input line, in
//! order, PEM state carried across lines, config errors with positions.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .arg("redact")
        .args(args)
        .env_remove("LOGSHIP_CONFIG")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logship");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

#[test]
fn redact_cli_one_line_out_per_line_in() {
    let input = b"plain\r\n\npassword=hunter2\r\nbad utf8 \xff here\nlast without newline";
    let out = run(&[], input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches('\n').count(), 4, "{text:?}");
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[0], "plain\r");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "password=[REDACTED:password]\r");
    assert_eq!(lines[4], "last without newline");
}

#[test]
fn redact_cli_pem_across_lines() {
    let body = [
        "MIIEpAIBAAKCAQEA0Zx7cliBodyLine1qhkiG9w0BAQEFAASCBKcwggSjAgEAAo",
        "cliBodyLine2ZZ8cKjAoIBAQC7VJTUt9Us8cKjMYPRIVATEBODYLINEtwoqhkiG9",
    ];
    let mut input = String::from("2024-05-01T10:00:00Z INFO boot\n");
    input.push_str("2024-05-01T10:00:01Z ERROR cfg: -----BEGIN RSA PRIVATE KEY-----\n");
    for b in body {
        input.push_str(&format!("2024-05-01T10:00:01Z ERROR cfg: {b}\n"));
    }
    input.push_str("2024-05-01T10:00:01Z ERROR cfg: -----END RSA PRIVATE KEY-----\n");
    input.push_str("2024-05-01T10:00:02Z INFO token=ghp_0123456789abcdefghijABCDEFGHIJ012345 ok\n");
    input.push_str("2024-05-01T10:00:03Z INFO -----BEGIN CERTIFICATE-----\n");
    let out = run(&[], input.as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), input.lines().count(), "{text}");
    for b in body {
        assert!(!text.contains(&b[..20]), "{text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2024-05-01T10:00:00Z INFO boot");
    assert_eq!(
        lines[2],
        "2024-05-01T10:00:01Z ERROR cfg: [REDACTED:pem_private_key]"
    );
    assert_eq!(
        lines[5],
        "2024-05-01T10:00:02Z INFO token=[REDACTED:github_pat] ok"
    );
    assert_eq!(
        lines[6],
        "2024-05-01T10:00:03Z INFO -----BEGIN CERTIFICATE-----"
    );
}

#[test]
fn redact_cli_bad_pattern_reports_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[redaction]\n[[redaction.patterns]]\nname = \"x\"\nregex = \"a(b\"\n",
    )
    .unwrap();
    let out = run(&["-c", cfg.to_str().unwrap()], b"x\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml:4:9"), "{err}");
}

#[test]
fn redact_cli_custom_pattern_applies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[redaction]\nkeys = [\"pin\"]\n[[redaction.patterns]]\nname = \"emp\"\nregex = \"EMP-[0-9]{6}\"\n",
    )
    .unwrap();
    let out = run(&["-c", cfg.to_str().unwrap()], b"user EMP-123456 pin=42\n");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "user [REDACTED:emp] pin=[REDACTED:pin]\n"
    );
}

#[test]
fn redact_cli_hash_mode_key_from_env_never_printed() {
    let dir = std::env::temp_dir().join(format!("logship-redact-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        "[redaction]\nmode = \"hash\"\nhash_key_env = \"LOGSHIP_TEST_REDACT_KEY\"\npii = [\"email\"]\n",
    )
    .unwrap();
    let key = "k3y-that-must-never-be-printed-0123";
    let check = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["check", "-c"])
        .arg(&cfg)
        .env("LOGSHIP_TEST_REDACT_KEY", key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("mode=hash"), "{text}");
    assert!(!text.contains(key), "{text}");
    // Without the variable, check fails at the key's position.
    let missing = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["check", "-c"])
        .arg(&cfg)
        .env_remove("LOGSHIP_TEST_REDACT_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(err.contains("agent.toml:3:16:"), "{err}");
    // The agent's redaction with that key: same secret, same tag.
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["redact", "-c"])
        .arg(&cfg)
        .env("LOGSHIP_TEST_REDACT_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"password=hunter2\n{\"password\":\"hunter2\"} to bob@example.com\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let tag = |l: &str| {
        l.split("[REDACTED:password:")
            .nth(1)
            .map(|r| r[..6].to_string())
    };
    assert!(tag(lines[0]).is_some(), "{text}");
    assert_eq!(tag(lines[0]), tag(lines[1]), "{text}");
    assert!(lines[1].contains("[REDACTED:email:"), "{text}");
    assert!(!text.contains("hunter2") && !text.contains(key), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
