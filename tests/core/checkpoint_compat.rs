//! A checkpoint of format version 1 (written by logship before the
//! checkpoint had its own versioned types) is resumed without losing or
//! repeating a line; an unknown future version stops the agent with an
//! error naming the file instead of reading everything again.
//!
//! `tests/fixtures/checkpoint-v1/` is the state of a version-1 agent killed
//! with SIGKILL (`make.sh` there made it): three followed files, one of them
//! truncated (a retired head), an open PEM block, uploaded and open
//! segments, and lines appended after its last checkpoint. The fixture
//! holds absolute paths and inode numbers of the machine it was made on;
//! the test moves only those to its copies, nothing else of the format.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use std::os::unix::fs::MetadataExt;

use crate::support::agent::{append, assert_exactly_once, numbered, Agent, BIN};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-v1")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn agent() -> Agent {
    Agent::new(
        r#"
[agent]
instance_id = "fixture-host"
data_dir = "{data}"
shutdown_timeout = "20s"

[segments]
commit_interval = "50ms"
max_bytes = "16KiB"
local_retention = "36500d"

[[sources]]
name = "app"
include = ["{logs}/*.log"]

[metrics]
enabled = false
"#,
    )
}

/// Copy the fixture into `a`'s dirs and point its checkpoint at the copies.
fn install_fixture(a: &Agent) {
    let fx = fixture();
    copy_tree(&fx.join("logs"), &a.logs());
    copy_tree(&fx.join("data"), &a.data());
    let old_root = fs::read_to_string(fx.join("root")).unwrap();
    let cp_path = a.data().join("state/checkpoint.json");
    let text = fs::read_to_string(&cp_path).unwrap().replace(
        &format!("{old_root}/logs/"),
        &format!("{}/", a.logs().display()),
    );
    let mut cp: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cp["version"], 1, "the fixture is of format version 1");
    for f in cp["files"].as_array_mut().unwrap() {
        let m = fs::metadata(f["path"].as_str().unwrap()).unwrap();
        f["dev"] = m.dev().into();
        f["ino"] = m.ino().into();
    }
    fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
}

/// What the agent must have written from the fixture's files: every line,
/// through the agent's redaction (the PEM block is open across the kill).
fn expected_from_fixture(a: &Agent) -> Vec<String> {
    let mut lines: Vec<String> = (0..50).map(|i| format!("v1 b line {i:04}")).collect();
    for name in ["app.log", "b.log", "pem.log"] {
        let out = Command::new(BIN)
            .args(["redact", "-c"])
            .arg(&a.config)
            .stdin(fs::File::open(a.logs().join(name)).unwrap())
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success());
        lines.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    lines
}

#[test]
fn version_1_checkpoint_resumes_without_loss_or_duplicates() {
    let mut a = agent();
    install_fixture(&a);
    let mut expected = expected_from_fixture(&a);
    assert!(expected.iter().any(|l| l == "v1 app line 0599"));
    a.start();
    // A copy of b.log as it was before its truncation: the retired head
    // from the fixture says it was read to its end already.
    let old_b: Vec<String> = (0..50).map(|i| format!("v1 b line {i:04}")).collect();
    // (Renamed into place, so the agent never sees it half written.)
    append(&a.logs().join("b-1.tmp"), &old_b);
    fs::rename(a.logs().join("b-1.tmp"), a.logs().join("b-1.log")).unwrap();
    let more = numbered("v2 app", 0..100);
    append(&a.logs().join("app.log"), &more);
    expected.extend(more);
    a.wait_until(
        "every line in local segments",
        Duration::from_secs(60),
        |a| a.local_events().len() >= expected.len(),
    );
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());
    assert!(
        !a.stderr().contains("instance_id changed"),
        "{}",
        a.stderr()
    );
    // Redacted key lines all read the same: counted, the rest compared.
    let redacted = |m: &str| m == "[REDACTED:pem_private_key]";
    let n_redacted = expected.iter().filter(|l| redacted(l)).count();
    assert_eq!(n_redacted, 4, "BEGIN and three body lines: {expected:?}");
    expected.retain(|l| !redacted(l));
    let bucket = a.bucket_events();
    for events in [&bucket, &a.local_events()] {
        let (keys, rest): (Vec<_>, Vec<_>) = events.iter().cloned().partition(|e| redacted(&e.msg));
        assert_eq!(keys.len(), n_redacted);
        assert_exactly_once(&rest, &expected);
        let mut ids: Vec<u64> = events.iter().map(|e| e.seq).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), events.len(), "a seq used twice");
    }
    // The PEM block stayed open across the kill: its last body line, read
    // only after the restart, is hidden too.
    assert!(bucket.iter().all(|e| !e.msg.contains("SECRETBODY")));
    // New seq values come after the fixture's lease.
    let fixture_lease_end = 67_108_864;
    assert!(bucket
        .iter()
        .filter(|e| e.msg.starts_with("v2 "))
        .all(|e| e.seq >= fixture_lease_end));
    // The agent now writes version 2.
    let cp: serde_json::Value =
        serde_json::from_slice(&fs::read(a.data().join("state/checkpoint.json")).unwrap()).unwrap();
    assert_eq!(cp["version"], 2);
}

#[test]
fn unknown_checkpoint_version_stops_the_agent_with_a_clear_error() {
    let mut a = agent();
    fs::create_dir_all(a.data().join("state")).unwrap();
    let cp_path = a.data().join("state/checkpoint.json");
    fs::write(&cp_path, br#"{"version":99,"files":[]}"#).unwrap();
    append(&a.logs().join("app.log"), &numbered("x", 0..3));
    a.start();
    a.wait_until("the agent to exit", Duration::from_secs(30), |a| !a.alive());
    let err = a.stderr();
    assert!(
        err.contains(&cp_path.display().to_string()) && err.contains("version 99"),
        "{err}"
    );
    assert!(a.local_events().is_empty(), "nothing is read again");
    assert_eq!(
        fs::read(&cp_path).unwrap(),
        br#"{"version":99,"files":[]}"#,
        "the checkpoint is left as it was"
    );
}
