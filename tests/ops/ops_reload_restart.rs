//! A reload that changes a setting only a restart can apply is refused
//! whole: logged with the key, counted as an error, the running config
//! stays — never half applied and reported as a success.

use crate::support;

use std::time::Duration;

use support::agent::{append, numbered, strip_ansi, Agent};

#[test]
fn a_reload_that_needs_a_restart_is_refused_and_counted() {
    let mut a = Agent::simple("");
    a.enable_metrics();
    let log = a.logs().join("app.log");
    append(&log, &numbered("before", 0..5));
    a.start();
    a.wait_local(5);
    let good = std::fs::read_to_string(&a.config).unwrap();
    let moved = a.dir.path().join("elsewhere");
    let changed = good.replace(
        &format!("data_dir = \"{}\"", a.data().display()),
        &format!("data_dir = \"{}\"", moved.display()),
    );
    assert_ne!(changed, good, "the test config names its data_dir");
    // A setting that is applied in place rides along and must not be
    // applied either: the reload is refused whole.
    let changed = changed.replace(
        "commit_interval = \"50ms\"",
        "commit_interval = \"50ms\"\nmax_bytes = \"1KiB\"",
    );
    std::fs::write(&a.config, changed).unwrap();
    support::agent::signal(a.pid(), libc::SIGHUP);
    a.wait_until("the refused reload", Duration::from_secs(30), |a| {
        a.metric("logship_config_reloads_total{result=\"error\"}") >= 1.0
    });
    assert_eq!(a.metric("logship_config_reloads_total{result=\"ok\"}"), 0.0);
    let err = strip_ansi(&a.stderr());
    assert!(
        err.contains("agent.data_dir changed, and that takes a restart"),
        "{err}"
    );
    assert!(!err.contains("configuration reloaded"), "{err}");
    // Still running on the old config: new lines land in the old data_dir.
    append(&log, &numbered("after", 0..5));
    a.wait_local(10);
    assert!(!moved.exists(), "the new data_dir must not be used");
    assert!(a.alive());
    assert!(a.term().success());
}
