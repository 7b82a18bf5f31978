//! Segments that come due while their file is idle are sealed and shipped
//! without waiting for another line: by `segments.max_age`, at UTC
//! midnight, and after `segments.build_idle_timeout`. Each test writes its
//! lines once, before the agent starts, and nothing after; the agent keeps
//! running (a SIGTERM would seal everything and hide the bug).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use support::agent::{append, assert_exactly_once, numbered, Agent};

const DAY_MS: i64 = 86_400_000;

/// Wait (generously: the machine is shared) until the bucket holds an
/// object whose key starts with `prefix`, with the agent still running.
fn wait_for_object(a: &mut Agent, prefix: &str) {
    a.wait_until(
        &format!("an object under {prefix} with no further line written"),
        Duration::from_secs(90),
        |a| {
            assert!(a.alive(), "agent exited; stderr:\n{}", a.stderr());
            a.bucket_objects().keys().any(|k| k.starts_with(prefix))
        },
    );
}

#[test]
fn an_idle_segment_is_shipped_at_max_age() {
    let mut a = Agent::with(
        "max_age = \"2s\"",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    let lines = numbered("age", 0..10);
    append(&a.logs().join("app.log"), &lines);
    a.start();
    wait_for_object(&mut a, "system/");
    assert_exactly_once(&a.bucket_events(), &lines);
    assert!(a.term().success());
}

#[test]
fn an_idle_segment_is_shipped_at_utc_midnight() {
    if !cfg!(debug_assertions) {
        // The clock offset hook exists in debug builds only (see
        // `logship::pipeline::now_ms`).
        eprintln!("SKIPPED: LOGSHIP_TEST_CLOCK_OFFSET_MS needs a debug build");
        return;
    }
    // max_age far away: only the day change can seal this segment.
    let mut a = Agent::with(
        "max_age = \"1h\"",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    // The agent's clock starts 10 s before the next UTC midnight.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let midnight = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
    a.env(
        "LOGSHIP_TEST_CLOCK_OFFSET_MS",
        &(midnight - 10_000 - now).to_string(),
    );
    let lines = numbered("midnight", 0..10);
    append(&a.logs().join("app.log"), &lines);
    a.start();
    wait_for_object(&mut a, "system/");
    let objects = a.bucket_objects();
    assert_eq!(objects.len(), 1, "{:?}", objects.keys());
    let (key, events) = objects.iter().next().unwrap();
    // Sealed on the day it was written (the day before the midnight).
    let (y, m, d) = logship::normalize::time::civil_from_days(midnight.div_euclid(DAY_MS) - 1);
    let day = format!("system/{y:04}/{m:02}/{d:02}/test-host-");
    assert!(key.starts_with(&day), "{key} is not under {day}");
    assert_exactly_once(events, &lines);
    assert!(a.term().success());
}

#[test]
fn an_idle_build_is_shipped_after_the_idle_timeout() {
    let mut a = Agent::with(
        "build_idle_timeout = \"2s\"",
        r#"[[sources]]
name = "builds"
include = ["{logs}/builds/*.log"]
path_template = "{logs}/builds/{buildId}.log"
tier = "build""#,
    );
    let lines = numbered("build", 0..10);
    std::fs::create_dir_all(a.logs().join("builds")).unwrap();
    append(&a.logs().join("builds/b-7.log"), &lines);
    a.start();
    wait_for_object(&mut a, "builds/b-7.ndjson.gz");
    assert_exactly_once(&a.bucket_events(), &lines);
    assert!(a.term().success());
}
