//! With the inotify watch limit reached, a directory that cannot be
//! watched is polled instead — only that one — with one log line and the
//! fallback counted, and every line still arrives exactly once.
//!
//! The limit is simulated (`LOGSHIP_TEST_INOTIFY_WATCH_LIMIT`, read by debug
//! builds only): lowering `fs.inotify.max_user_watches` would change it for
//! every process on the host, including tests running beside this one.

use std::fs;
use std::time::Duration;

use crate::support::agent::{append, assert_exactly_once, numbered, strip_ansi, Agent};

#[test]
fn an_unwatchable_directory_is_polled_and_nothing_is_lost() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"a\"\ninclude = [\"{logs}/a/*.log\"]\n\n[[sources]]\nname = \"b\"\ninclude = [\"{logs}/b/*.log\"]\n",
    );
    for d in ["a", "b"] {
        fs::create_dir_all(a.logs().join(d)).unwrap();
    }
    a.enable_metrics();
    a.env("LOGSHIP_TEST_INOTIFY_WATCH_LIMIT", "1");
    a.start();
    a.wait_ready();
    assert_eq!(a.metric("logship_polled_dirs"), 1.0);
    assert_eq!(a.metric("logship_watch_fallbacks_total"), 1.0);
    let mut expected = Vec::new();
    for round in 0..5 {
        for d in ["a", "b"] {
            let lines = numbered(&format!("{d}{round}"), 0..200);
            append(&a.logs().join(d).join("app.log"), &lines);
            expected.extend(lines);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A file created later in the polled directory is found by the scans.
    let late = numbered("b-late", 0..100);
    append(&a.logs().join("b").join("late.log"), &late);
    expected.extend(late);
    a.wait_local(expected.len());
    assert!(a.term().success(), "{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), &expected);
    let log = strip_ansi(&a.stderr());
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot watch directory"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("/logs/b"), "{}", warnings[0]);
}
