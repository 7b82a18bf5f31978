//! `logship check` on alert config mistakes: every one reported as
//! `file:line:col: message`, exit status 1; the starter rules pass.

use std::process::Command;

fn check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_logship"))
        .arg("check")
        .arg("-c")
        .arg(&path)
        .env_remove("LOGSHIP_CONFIG")
        .output()
        .expect("run logship check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "agent.toml"),
    )
}

#[test]
fn alert_mistakes_are_reported_with_positions() {
    let (ok, _, err) = check(
        r#"[alerts.channels.webhook]
url = "http://127.0.0.1:9000/hook"

[[alerts.rules]]
name = "deploy_failed"
channels = ["webhook", "pager"]
[alerts.rules.match]
msg = "deploy (failed"

[[alerts.rules]]
name = "burst"
type = "threshold"
count = 5
window = "0s"
channels = ["webhook"]
"#,
    );
    assert!(!ok);
    assert!(
        err.contains("agent.toml:6:24: unknown channel \"pager\""),
        "{err}"
    );
    assert!(err.contains("agent.toml:8:7: invalid regex"), "{err}");
    assert!(
        err.contains("agent.toml:14:10: window must be > 0"),
        "{err}"
    );
}

#[test]
fn starter_rules_pass_check_with_secrets_masked() {
    let (ok, out, err) = check(include_str!("../../src/alert/example.toml"));
    assert!(ok, "{err}");
    assert!(out.contains("alerts: 6 rules, 6 channels"), "{out}");
    assert!(!out.contains("XXXX"), "{out}");
}
