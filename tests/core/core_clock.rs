//! Wall-clock jumps while writing: the clock of a running agent is stepped
//! back an hour and then forward a day (the debug-build hook
//! `LOGSHIP_TEST_CLOCK_FILE`, read by `logship::pipeline::now_ms`, which the
//! alert engine's clock also uses). Every line must be stored exactly once,
//! `seq` must keep increasing in line order, the open segment must be sealed
//! at each step (not held until the clock catches up), no object may hold
//! a line twice, an alert threshold that the lines never reach must not
//! fire, and an absence rule must not fire for the day the clock skipped.

use std::time::Duration;

use crate::support;
use support::agent::{append, assert_exactly_once, numbered, Agent};
use support::http_receiver::Receiver;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_stepped_back_and_forward_loses_and_repeats_nothing() {
    if !cfg!(debug_assertions) {
        eprintln!("SKIPPED: LOGSHIP_TEST_CLOCK_FILE needs a debug build");
        return;
    }
    let hook = Receiver::ok().await;
    let mut a = Agent::with(
        "max_age = \"1h\"",
        &format!(
            r#"[[sources]]
name = "app"
include = ["{{logs}}/*.log"]

[alerts.channels.webhook]
url = "{}"

[[alerts.rules]]
name = "heartbeat_gone"
type = "absence"
window = "10m"
severity = "high"
channels = ["webhook"]
[alerts.rules.match]
msg = "line"

[[alerts.rules]]
name = "error_storm"
type = "threshold"
count = 1000
window = "1m"
severity = "high"
channels = ["webhook"]
[alerts.rules.match]
lvl = "error"
"#,
            hook.url("/hook")
        ),
    );
    let clock = a.data().parent().unwrap().join("clock-offset");
    std::fs::write(&clock, "0").unwrap();
    a.env("LOGSHIP_TEST_CLOCK_FILE", clock.to_str().unwrap());
    a.start();
    let log = a.logs().join("app.log");
    let mut all = Vec::new();
    let phase = |a: &mut Agent, name: &str, offset: i64, all: &mut Vec<String>| {
        std::fs::write(&clock, offset.to_string()).unwrap();
        // Let a loop turn see the new time before the lines come (the hook
        // re-reads the file every 50 ms; a turn waits at most 100 ms).
        std::thread::sleep(Duration::from_secs(1));
        // Errors well under the threshold, in every phase.
        let lines: Vec<String> = numbered(name, 0..300)
            .into_iter()
            .enumerate()
            .map(|(i, l)| if i % 10 == 0 { format!("ERROR {l}") } else { l })
            .collect();
        append(&log, &lines);
        all.extend(lines);
        a.wait_local(all.len());
    };
    phase(&mut a, "before", 0, &mut all);
    phase(&mut a, "back-an-hour", -HOUR_MS, &mut all);
    phase(&mut a, "forward-a-day", DAY_MS, &mut all);

    // A few alert ticks (1 s) at the new time, the agent still running.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The step back and the day change each seal the open segment, with
    // no further line and max_age an hour away: three objects.
    a.wait_until(
        "the segments of the first two phases in the bucket",
        Duration::from_secs(90),
        |a| {
            assert!(a.alive(), "agent exited; stderr:\n{}", a.stderr());
            a.bucket_objects().len() >= 2
        },
    );
    assert!(a.term().success(), "stderr:\n{}", a.stderr());

    let objects = a.bucket_objects();
    assert_eq!(objects.len(), 3, "{:?}", objects.keys().collect::<Vec<_>>());
    let events = a.bucket_events();
    assert_exactly_once(&events, &all);
    // seq in the order the lines were written, whatever the clock said.
    let mut by_line: Vec<(usize, u64)> = events
        .iter()
        .map(|e| {
            let i = all
                .iter()
                .position(|l| e.msg.ends_with(l.trim_start_matches("ERROR ")))
                .unwrap();
            (i, e.seq)
        })
        .collect();
    by_line.sort();
    assert!(
        by_line.windows(2).all(|w| w[0].1 < w[1].1),
        "seq not increasing in line order"
    );
    // The last phase's lines are stamped a day ahead, in a later day's key.
    let keys: Vec<&String> = objects.keys().collect();
    let days: std::collections::BTreeSet<&str> = keys.iter().map(|k| &k[..17]).collect();
    assert!(
        days.len() >= 2,
        "the day change made a new day's object: {keys:?}"
    );
    let ahead = events
        .iter()
        .filter(|e| e.msg.contains("forward-a-day"))
        .map(|e| e.ts);
    let behind = events
        .iter()
        .filter(|e| e.msg.contains("before"))
        .map(|e| e.ts);
    assert!(ahead.min().unwrap() > behind.max().unwrap() + DAY_MS - HOUR_MS);

    // 90 errors in all, 30 a phase: the 1000-a-minute threshold never met,
    // also not by windows confused by the jumps; and matching lines never
    // stopped for 10 minutes of real time, though the wall clock jumped a
    // day (the absence rule's window follows the step).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hook.requests().is_empty(),
        "spurious alert: {:?}",
        hook.requests().len()
    );
}
