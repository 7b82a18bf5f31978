//! The agent's life as an operator sees it: graceful stop under load, hot
//! reload with a broken file, and backpressure when uploads cannot keep up.

use crate::support;

use std::fs;
use std::time::Duration;

use support::agent::{append, assert_exactly_once, numbered, Agent, Writer};

#[test]
fn sigterm_during_heavy_writing_exits_0_and_loses_nothing() {
    let mut a = Agent::simple("");
    let cfg = fs::read_to_string(&a.config)
        .unwrap()
        .replace("shutdown_timeout = \"20s\"", "shutdown_timeout = \"3s\"");
    fs::write(&a.config, cfg).unwrap();
    let log = a.logs().join("app.log");
    // Heavy but bounded: ~40k lines/s.
    let writer = Writer::spawn(log.clone(), "heavy", 200, Duration::from_millis(5));
    a.start();
    // Let the agent work under the writer for a while.
    std::thread::sleep(Duration::from_millis(1500));
    let st = a.term();
    assert!(st.success(), "exit {st:?}; stderr:\n{}", a.stderr());
    // The stop went the graceful way, in order: signal, seal and upload
    // (bounded by shutdown_timeout; what misses it is uploaded after the
    // restart), clean exit.
    let log = support::agent::strip_ansi(&a.stderr());
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("{what:?} not logged:\n{log}"))
    };
    assert!(at("SIGTERM: sealing, uploading and stopping") < at("stopped cleanly"));
    // The writer keeps going while the agent is down; restart and finish.
    std::thread::sleep(Duration::from_millis(300));
    a.start();
    std::thread::sleep(Duration::from_millis(500));
    let all = writer.stop();
    a.wait_local(all.len());
    assert!(a.term().success());
    assert_exactly_once(&a.bucket_events(), &all);
}

/// A SIGTERM as soon as the agent is visible (its metrics endpoint is up)
/// is a graceful stop: exit 0, not death by the default signal action.
#[test]
fn sigterm_right_after_the_metrics_endpoint_is_up_exits_0() {
    let mut a = Agent::simple("");
    a.enable_metrics();
    append(&a.logs().join("app.log"), &numbered("early", 0..10));
    a.start();
    a.metrics_addr();
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    // Whatever was read is shipped or resumed: nothing is lost. (The
    // first run may have stored all ten already, so the second is stopped
    // only once it is up: no process can catch a signal sent before it
    // installs its handler.)
    a.start();
    a.metrics_addr();
    a.wait_local(10);
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), &numbered("early", 0..10));
}

#[test]
fn reload_with_a_broken_config_keeps_shipping_and_counts_the_error() {
    let mut a = Agent::simple("");
    a.enable_metrics();
    let log = a.logs().join("app.log");
    a.start();
    append(&log, &numbered("one", 0..10));
    a.wait_local(10);
    let good = fs::read_to_string(&a.config).unwrap();
    fs::write(
        &a.config,
        format!("{good}\n[segments]\nmax_bytes = \"many\"\n"),
    )
    .unwrap();
    support::agent::signal(a.pid(), libc::SIGHUP);
    a.wait_until("a counted reload error", Duration::from_secs(20), |a| {
        a.metric("logship_config_reloads_total{result=\"error\"}") >= 1.0
    });
    assert!(a.alive());
    append(&log, &numbered("two", 0..10));
    a.wait_local(20);
    let err = support::agent::strip_ansi(&a.stderr());
    assert!(
        err.contains("agent.toml:"),
        "reload error should name the file and position:\n{err}"
    );
    // A valid change is applied: a new source starts being read.
    fs::write(
        &a.config,
        good.replace(
            "[metrics]",
            &format!(
                "[[sources]]\nname = \"extra\"\ninclude = [\"{}/*.txt\"]\n\n[metrics]",
                a.logs().display()
            ),
        ),
    )
    .unwrap();
    support::agent::signal(a.pid(), libc::SIGHUP);
    a.wait_until("a successful reload", Duration::from_secs(20), |a| {
        a.metric("logship_config_reloads_total{result=\"ok\"}") >= 1.0
    });
    append(&a.logs().join("new.txt"), &numbered("three", 0..5));
    a.wait_local(25);
    assert!(a.term().success());
    let expected = [
        numbered("one", 0..10),
        numbered("two", 0..10),
        numbered("three", 0..5),
    ]
    .concat();
    assert_exactly_once(&a.bucket_events(), &expected);
}

#[test]
fn reading_pauses_at_max_disk_and_nothing_is_lost() {
    // The bucket path is under a regular file, so every upload fails and
    // sealed segments pile up until segments.max_disk.
    let mut a = Agent::new(
        r#"
[agent]
instance_id = "test-host"
data_dir = "{data}"
shutdown_timeout = "1s"
[segments]
commit_interval = "50ms"
max_bytes = "256KiB"
max_disk = "2MiB"
[[sources]]
name = "app"
include = ["{logs}/*.log"]
[bucket]
path = "{logs}/not-a-dir/bucket"
[metrics]
enabled = false
"#,
    );
    a.enable_metrics();
    fs::write(a.logs().join("not-a-dir"), "").unwrap();
    // ~4 MB of input, ~9 MB of NDJSON: far beyond max_disk.
    let pad = "x".repeat(180);
    let lines: Vec<String> = numbered("bp", 0..20_000)
        .into_iter()
        .map(|l| format!("{l} {pad}"))
        .collect();
    append(&a.logs().join("app.log"), &lines);
    a.start();
    a.wait_until("backpressure", Duration::from_secs(30), |a| {
        a.metric("logship_backpressure") == 1.0
    });
    std::thread::sleep(Duration::from_millis(500));
    let held = a.local_events().len();
    assert!(
        held < 20_000,
        "reading should have paused, but {held} events are local"
    );
    a.wait_until(
        "failed uploads to be counted",
        Duration::from_secs(20),
        |a| a.metric("logship_upload_failures_total") >= 1.0,
    );
    assert!(a.term().success());
    // With the bucket fixed (back to the default), everything arrives
    // exactly once.
    let cfg = fs::read_to_string(&a.config).unwrap();
    let bad = format!(
        "[bucket]\npath = \"{}/not-a-dir/bucket\"\n",
        a.logs().display()
    );
    assert!(cfg.contains(&bad));
    fs::write(&a.config, cfg.replace(&bad, "")).unwrap();
    a.start();
    // Uploaded segments are deleted early to stay within max_disk.
    a.wait_stored(20_000);
    assert!(a.term().success());
    assert_exactly_once(&a.bucket_events(), &lines);
}
