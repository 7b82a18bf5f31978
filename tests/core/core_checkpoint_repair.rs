//! A checkpoint corrupted on disk: the agent falls back to the previous
//! one by itself, exactly once; with both unusable it stops with an error
//! naming the file and pointing at `logship checkpoint repair` (not "move
//! it away", which would read everything again), and the repaired
//! checkpoint resumes every file after the lines already stored.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::support::agent::{append, assert_exactly_once, numbered, Agent, Writer, BIN};

fn cut_in_half(path: &std::path::Path) {
    let raw = fs::read(path).unwrap();
    fs::write(path, &raw[..raw.len() / 2]).unwrap();
}

#[test]
fn a_torn_checkpoint_falls_back_to_the_previous_one_with_every_line_once() {
    let mut a = Agent::with(
        "max_bytes = \"64KiB\"",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    a.start();
    let w = Writer::spawn(
        a.logs().join("app.log"),
        "torn",
        20,
        Duration::from_millis(5),
    );
    a.wait_local(3000);
    a.kill9();
    let state = a.data().join("state");
    assert!(
        state.join("checkpoint.prev.json").exists(),
        "no previous checkpoint kept"
    );
    cut_in_half(&state.join("checkpoint.json"));
    a.start();
    let written = w.stop();
    a.wait_stored(written.len());
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert!(
        a.stderr().contains("resuming from the previous one"),
        "{}",
        a.stderr()
    );
    assert!(state.join("checkpoint.json.corrupt").exists());
    assert_exactly_once(&a.bucket_events(), &written);
}

#[test]
fn both_checkpoints_unusable_stop_the_agent_and_repair_resumes_after_what_is_stored() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    let (app, other) = (a.logs().join("app.log"), a.logs().join("other.log"));
    let first = [numbered("app", 0..400), numbered("other", 0..300)];
    append(&app, &first[0]);
    append(&other, &first[1]);
    a.start();
    a.wait_local(700);
    // Killed: some of what is in the segments was never committed.
    a.kill9();
    // Written while the agent is down: not stored anywhere yet.
    let later = [numbered("app", 400..650), numbered("other", 300..420)];
    append(&app, &later[0]);
    append(&other, &later[1]);
    let state = a.data().join("state");
    cut_in_half(&state.join("checkpoint.json"));
    fs::write(state.join("checkpoint.prev.json"), b"{\"version\":2,").unwrap();
    a.start();
    a.wait_until(
        "the agent to refuse to start",
        Duration::from_secs(30),
        |a| !a.alive(),
    );
    let st = a.child.take().map(|mut c| c.wait().unwrap());
    assert!(!st.unwrap().success());
    let err = a.stderr();
    assert!(
        err.contains("checkpoint.json") && err.contains("checkpoint.prev.json"),
        "{err}"
    );
    assert!(err.contains("logship checkpoint repair"), "{err}");
    assert!(!err.contains("move it away"), "{err}");

    let out = Command::new(BIN)
        .args(["checkpoint", "repair", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (f, lines) in [("app.log", 400), ("other.log", 300)] {
        assert!(
            report.contains(&format!("{f}: resumes at byte"))
                && report.contains(&format!("({lines} lines taken as read)")),
            "{report}"
        );
    }
    a.start();
    let all: Vec<String> = [&first[0], &first[1], &later[0], &later[1]]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    a.wait_stored(all.len());
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), &all);
}
