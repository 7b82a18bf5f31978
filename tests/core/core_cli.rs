//! The command line as a user meets it: `check`, `normalize`, `version`,
//! and config errors with `file:line:col`.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::agent::BIN;

fn check(text: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn example_config_passes_check() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/agent.toml.example");
    let out = Command::new(BIN)
        .args(["check", "-c", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
}

#[test]
fn typo_key_reports_line_column_and_suggestion() {
    let (ok, _, err) = check("[agent]\ndata_dir = \"/tmp/x\"\n\n[[sources]]\nname = \"a\"\ninclude = [\"/tmp/*.log\"]\ntier_name = \"build\"\n", &[]);
    assert!(!ok);
    assert!(
        err.contains("agent.toml:7:1: unknown key \"tier_name\"; did you mean \"tier\"?"),
        "{err}"
    );
}

#[test]
fn bad_type_reports_line_and_column() {
    let (ok, _, err) = check("[segments]\nmax_bytes = \"lots\"\n", &[]);
    assert!(!ok);
    assert!(err.contains("agent.toml:2:13:"), "{err}");
    assert!(err.contains("invalid size"), "{err}");
}

#[test]
fn missing_env_var_is_named_with_position() {
    let (ok, _, err) = check(
        "[agent]\ninstance_id = \"${LOGSHIP_TEST_SURELY_UNSET}\"\n",
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("agent.toml:2:16: environment variable LOGSHIP_TEST_SURELY_UNSET is not set"),
        "{err}"
    );
    let (ok, out, _) = check(
        "[agent]\ninstance_id = \"${LOGSHIP_TEST_HOST}\"\n",
        &[("LOGSHIP_TEST_HOST", "web-7")],
    );
    assert!(ok);
    assert!(out.contains("instance_id=web-7"), "{out}");
}

#[test]
fn check_masks_secrets() {
    let (ok, out, err) = check(
        "[bucket]\nkind = \"s3\"\nbucket = \"logs\"\nendpoint = \"http://127.0.0.1:1\"\naccess_key_id = \"${K}\"\nsecret_access_key = \"${S}\"\n",
        &[("K", "AKIAEXAMPLEKEY123456"), ("S", "very-secret-value-xyz")],
    );
    assert!(ok, "{err}");
    assert!(
        !out.contains("AKIAEXAMPLEKEY123456") && !out.contains("very-secret-value-xyz"),
        "{out}"
    );
    assert!(out.contains("****** (set)"), "{out}");
}

#[test]
fn normalize_turns_lines_into_events() {
    let mut child = Command::new(BIN)
        .args(["normalize", "--tier", "build"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2026-01-02T03:04:05Z ERROR compile failed\n{\"msg\":\"done\",\"buildId\":\"b-9\",\"level\":\"warn\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<logship::event::Event> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| logship::event::Event::from_json(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].lvl, logship::event::Level::Error);
    assert_eq!(lines[0].ts, 1_767_323_045_000);
    assert_eq!(lines[1].build_id.as_deref(), Some("b-9"));
    assert_eq!(lines[1].tier, logship::event::Tier::Build);
    assert!(lines[0].seq < lines[1].seq);
}

#[test]
fn version_prints() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("logship "));
}

#[test]
fn query_merges_local_and_bucket_in_order_without_duplicates() {
    use support::agent::{append, Agent};
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    append(
        &log,
        &[
            "2026-01-02T00:00:03Z ERROR third".to_string(),
            "2026-01-02T00:00:01Z WARN first".to_string(),
            "2026-01-02T00:00:02Z INFO second".to_string(),
        ],
    );
    a.start();
    a.wait_local(3);
    assert!(a.term().success()); // sealed and in the bucket, and still local
    a.start();
    append(&log, &["2026-01-02T00:00:04Z ERROR fourth".to_string()]);
    a.wait_local(4); // only local (open segment)
    let run = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(BIN)
            .args(["query", "-c"])
            .arg(&a.config)
            .args([
                "--tier",
                "system",
                "--since",
                "2026-01-02T00:00:00Z",
                "--until",
                "2026-01-03",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| logship::event::Event::from_json(l).unwrap().msg)
            .collect()
    };
    let all = run(&[]);
    let msgs: Vec<&str> = all.iter().map(|m| m.rsplit(' ').next().unwrap()).collect();
    assert_eq!(msgs, ["first", "second", "third", "fourth"]);
    let errors = run(&["--lvl", "error", "--grep", "(third|fourth)$"]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(run(&["--src", "nope"]).is_empty());
}
