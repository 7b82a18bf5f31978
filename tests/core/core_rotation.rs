//! Every rotation style of SPEC §4, black-box: the agent tails while the
//! "application" rotates, and every line lands in the bucket exactly once.

use crate::support;

use std::fs;
use std::time::Duration;

use support::agent::{append, assert_exactly_once, numbered, Agent};

/// Stop the agent gracefully (it seals and uploads everything) and check
/// the bucket holds exactly `expected`.
fn finish(mut a: Agent, expected: &[String]) {
    let st = a.term();
    assert!(st.success(), "exit status {st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), expected);
}

#[test]
fn rename_rotation_with_rotated_name_excluded() {
    // logrotate `create`: app.log -> app.log.1 (not matched), new app.log.
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    let first = numbered("before", 0..500);
    append(&log, &first);
    a.start();
    a.wait_local(500);
    // Lines written right before the rename, while the agent cannot read,
    // are still drained from the renamed file through the open handle.
    a.pause();
    let tail = numbered("tail", 0..200);
    append(&log, &tail);
    fs::rename(&log, a.logs().join("app.log.1")).unwrap();
    let after = numbered("after", 0..300);
    append(&log, &after);
    a.resume();
    a.wait_local(1000);
    finish(a, &[first, tail, after].concat());
}

#[test]
fn rename_rotation_with_rotated_name_included_is_not_read_twice() {
    let mut a = Agent::simple("");
    a.include_rotated();
    let log = a.logs().join("app.log");
    let mut expected = Vec::new();
    a.start();
    for round in 0..3 {
        let lines = numbered(&format!("round{round}"), 0..400);
        append(&log, &lines);
        expected.extend(lines);
        a.wait_local(expected.len());
        // Shift app.log.1 -> app.log.2, app.log -> app.log.1.
        let one = a.logs().join("app.log.1");
        if one.exists() {
            fs::rename(&one, a.logs().join("app.log.2")).unwrap();
        }
        fs::rename(&log, &one).unwrap();
    }
    let last = numbered("last", 0..100);
    append(&log, &last);
    expected.extend(last);
    a.wait_local(expected.len());
    std::thread::sleep(Duration::from_millis(500));
    finish(a, &expected);
}

#[test]
fn copytruncate_copy_is_recognised() {
    let mut a = Agent::simple("");
    a.include_rotated();
    let log = a.logs().join("app.log");
    let first = numbered("first", 0..600);
    append(&log, &first);
    a.start();
    a.wait_local(300);
    // Lines written after the agent's last read are only in the copy.
    a.pause();
    let racing = numbered("racing", 0..150);
    append(&log, &racing);
    fs::copy(&log, a.logs().join("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let after = numbered("after", 0..250);
    append(&log, &after);
    a.resume();
    a.wait_local(1000);
    std::thread::sleep(Duration::from_millis(500));
    finish(a, &[first, racing, after].concat());
}

/// copytruncate creates the copy empty and fills it afterwards. An agent
/// that scans in between must not take the empty copy for a new file: it
/// would read the whole copy again once filled (the 55-minute soak's
/// duplicates: whole rotated files read twice).
#[test]
fn copytruncate_copy_seen_while_still_empty_is_not_read_again() {
    let mut a = Agent::simple("");
    a.include_rotated();
    let log = a.logs().join("app.log");
    let first = numbered("first", 0..600);
    append(&log, &first);
    a.start();
    a.wait_local(600);
    // The copy exists, empty; a line after it makes sure the agent has
    // scanned the directory (the create event) and read past it.
    let copy = a.logs().join("app.log.1");
    fs::File::create(&copy).unwrap();
    let marker = numbered("marker", 0..1);
    append(&log, &marker);
    a.wait_local(601);
    // Now the copy gets its content and the original is truncated.
    fs::write(&copy, fs::read(&log).unwrap()).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let after = numbered("after", 0..250);
    append(&log, &after);
    a.wait_local(851);
    // Time for a wrong re-read of the copy to show.
    std::thread::sleep(Duration::from_millis(2500));
    finish(a, &[first, marker, after].concat());
}

#[test]
fn plain_truncation_restarts_from_the_beginning() {
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    let first = numbered("first", 0..300);
    append(&log, &first);
    a.start();
    a.wait_local(300);
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = numbered("second", 0..50);
    append(&log, &second);
    a.wait_local(350);
    finish(a, &[first, second].concat());
}

#[test]
fn delete_and_recreate_reads_the_new_file() {
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    let first = numbered("first", 0..300);
    append(&log, &first);
    a.start();
    a.wait_local(300);
    fs::remove_file(&log).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Same name, same first line shape, new inode (or a reused one).
    let second = numbered("second", 0..300);
    append(&log, &second);
    a.wait_local(600);
    finish(a, &[first, second].concat());
}

#[test]
fn files_appearing_later_and_in_new_directories() {
    let mut a = Agent::with(
        "build_idle_timeout = \"1h\"",
        r#"[[sources]]
name = "builds"
include = ["{logs}/builds/*/*.log"]
path_template = "{logs}/builds/{date}/{buildId}.log"
tier = "build""#,
    );
    a.enable_metrics();
    a.start();
    // The directories are created after the agent watches the root.
    a.wait_ready();
    let mut expected = Vec::new();
    for (day, build) in [
        ("2026-01-01", "b-1"),
        ("2026-01-02", "b-2"),
        ("2026-01-02", "b-3"),
    ] {
        let dir = a.logs().join("builds").join(day);
        fs::create_dir_all(&dir).unwrap();
        let lines = numbered(build, 0..100);
        append(&dir.join(format!("{build}.log")), &lines);
        expected.extend(lines);
    }
    a.wait_local(300);
    let st = a.term();
    assert!(st.success());
    let objects = a.bucket_objects();
    for b in ["b-1", "b-2", "b-3"] {
        let evs = &objects[&format!("builds/{b}.ndjson.gz")];
        assert_eq!(evs.len(), 100, "{b}");
        assert!(evs
            .iter()
            .all(|e| e.build_id.as_deref() == Some(b) && e.tier == logship::event::Tier::Build));
    }
    assert_exactly_once(&a.bucket_events(), &expected);
}

#[test]
fn a_thousand_files_in_one_directory() {
    let mut a = Agent::simple("");
    let mut expected = Vec::new();
    for i in 0..500 {
        let lines = numbered(&format!("f{i}"), 0..3);
        append(&a.logs().join(format!("f{i}.log")), &lines);
        expected.extend(lines);
    }
    a.start();
    a.wait_local(1500);
    for i in 500..1000 {
        let lines = numbered(&format!("f{i}"), 0..3);
        append(&a.logs().join(format!("f{i}.log")), &lines);
        expected.extend(lines);
    }
    a.wait_local(3000);
    finish(a, &expected);
}

#[test]
fn last_line_without_newline_is_emitted_after_idle() {
    let mut a = Agent::simple("");
    let log = a.logs().join("app.log");
    fs::write(&log, "complete\nno newline yet").unwrap();
    a.start();
    a.wait_local(2);
    finish(a, &["complete".to_string(), "no newline yet".to_string()]);
}

#[test]
fn read_from_end_skips_existing_content_at_first_start_only() {
    let mut a = Agent::simple("read_from = \"end\"");
    a.enable_metrics();
    let old = a.logs().join("old.log");
    append(&old, &numbered("old", 0..100));
    a.start();
    // Ready = the first scan is done: old.log's end is recorded.
    a.wait_ready();
    let new_in_old = numbered("appended", 0..10);
    append(&old, &new_in_old);
    // A file that appears after the start is read from its beginning.
    let later = numbered("later", 0..10);
    append(&a.logs().join("later.log"), &later);
    a.wait_local(20);
    // After a restart, read_from no longer applies: nothing is skipped.
    assert!(a.term().success());
    let more = numbered("restart", 0..5);
    append(&old, &more);
    a.start();
    a.wait_local(25);
    finish(a, &[new_in_old, later, more].concat());
}
