//! Rule types on a hand-driven clock, through the public interface
//! (`start_with`, `offer`, `sync`) against a real HTTP receiver: each rule
//! fires at exactly the right moment, suppression counts, escalation, reload.

use crate::support;

use std::sync::atomic::Ordering;

use logship::event::{Level, Tier};
use logship::ops::shutdown;
use support::alert_util::*;
use support::http_receiver::Receiver;

#[tokio::test]
async fn threshold_fires_on_the_nth_match_in_window() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        r#"[[alerts.rules]]
name = "error_burst"
type = "threshold"
count = 3
window = "10s"
channels = ["webhook"]
[alerts.rules.match]
lvl = "error"
"#,
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    let e = event(Tier::System, Level::Error, "line", "disk full");
    for step in [0, 5_000, 7_000] {
        clock.set(T0 + step);
        h.offer(&e);
        h.sync().await;
        if step < 7_000 {
            assert!(hook.requests().is_empty(), "fired early at +{step}ms");
        }
    }
    assert_eq!(hook.accepted().len(), 1, "third match within 10s fires");
    assert_eq!(hook.accepted()[0].json()["count"], 3);
    // Still bursting with other messages: one problem, suppressed, counted.
    for msg in ["db timeout", "oom killed", "segfault"] {
        h.offer(&event(Tier::System, Level::Error, "line", msg));
    }
    h.sync().await;
    assert_eq!(hook.accepted().len(), 1, "a burst notifies once");
    assert_eq!(
        h.stats().expect("stats").suppressed.load(Ordering::SeqCst),
        3
    );
    // Info events are not matched; a fresh burst outside the window does
    // not fire by itself (and would be suppressed anyway).
    h.offer(&event(Tier::System, Level::Info, "line", "ok"));
    h.sync().await;
    assert_eq!(hook.requests().len(), 1);
}

#[tokio::test]
async fn threshold_window_slides() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        "[[alerts.rules]]\nname = \"t\"\ntype = \"threshold\"\ncount = 3\nwindow = \"10s\"\nchannels = [\"webhook\"]\n",
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    let e = event(Tier::System, Level::Error, "line", "x");
    // Windows run on the engine's clock when it evaluates, so each offer is
    // followed by a sync before time moves on.
    for step in [0, 5_000, 12_000] {
        clock.set(T0 + step);
        h.offer(&e);
        h.sync().await;
    }
    assert!(
        hook.requests().is_empty(),
        "the first match left the window"
    );
    clock.set(T0 + 13_000);
    h.offer(&e);
    h.sync().await;
    assert_eq!(hook.accepted().len(), 1);
}

#[tokio::test]
async fn ratio_fires_when_share_reached_with_min_base() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        r#"[[alerts.rules]]
name = "build_failure_ratio"
type = "ratio"
ratio = 0.5
min_base = 4
window = "1m"
channels = ["webhook"]
[alerts.rules.match]
tier = "build"
msg = "failed"
[alerts.rules.base]
tier = "build"
msg = "build (ok|failed)"
"#,
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    let ok = event(Tier::Build, Level::Info, "line", "build ok");
    let failed = event(Tier::Build, Level::Error, "line", "build failed");
    for (i, e) in [&ok, &failed, &ok, &failed, &ok].into_iter().enumerate() {
        clock.set(T0 + i as i64 * 1000);
        h.offer(e);
        h.sync().await;
    }
    // 2 of 5 < 50%; the 2-of-4 moment happened at the 4th event though.
    let got = hook.accepted();
    assert_eq!(got.len(), 1, "fires at 2 failed of 4 builds");
    assert_eq!(got[0].json()["event"]["msg"], "build failed");
    assert_eq!(got[0].json()["rule"], "build_failure_ratio");
}

#[tokio::test]
async fn ratio_ignores_old_base_outside_window() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        "[[alerts.rules]]\nname = \"r\"\ntype = \"ratio\"\nratio = 1.0\nmin_base = 2\nwindow = \"1m\"\nchannels = [\"webhook\"]\n[alerts.rules.match]\nmsg = \"failed\"\n[alerts.rules.base]\nmsg = \"build\"\n",
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    h.offer(&event(Tier::Build, Level::Info, "line", "build ok"));
    h.sync().await;
    clock.set(T0 + 5 * 60_000);
    h.offer(&event(Tier::Build, Level::Error, "line", "build failed"));
    h.sync().await;
    assert!(
        hook.requests().is_empty(),
        "1 of 1 in window: below min_base"
    );
    h.offer(&event(Tier::Build, Level::Error, "line", "build failed"));
    h.sync().await;
    assert_eq!(hook.accepted().len(), 1, "2 of 2 in window");
}

#[tokio::test]
async fn absence_fires_after_window_without_match() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        r#"[[alerts.rules]]
name = "heartbeat_missing"
type = "absence"
window = "30s"
severity = "critical"
channels = ["webhook"]
[alerts.rules.match]
kind = "heartbeat"
"#,
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    h.sync().await;
    clock.set(T0 + 10_000);
    h.offer(&event(Tier::System, Level::Info, "heartbeat", "alive"));
    h.sync().await;
    clock.set(T0 + 39_999);
    h.sync().await;
    assert!(hook.requests().is_empty(), "29.999s since the heartbeat");
    clock.set(T0 + 40_000);
    h.sync().await;
    let got = hook.accepted();
    assert_eq!(got.len(), 1, "30s without heartbeat");
    let n = got[0].json();
    assert_eq!(n["severity"], "critical");
    assert!(n["event"].is_null());
    // A heartbeat ends the absence; nothing more fires while they come.
    clock.set(T0 + 41_000);
    h.offer(&event(Tier::System, Level::Info, "heartbeat", "alive"));
    h.sync().await;
    clock.set(T0 + 60_000);
    h.sync().await;
    assert_eq!(hook.requests().len(), 1);
}

#[tokio::test]
async fn escalates_one_severity_when_still_firing() {
    let hook = Receiver::ok().await;
    let cfg = hook_config(
        &hook.url("/"),
        r#"[[alerts.rules]]
name = "deploy_failed"
severity = "high"
channels = ["webhook"]
suppress_for = "5m"
escalate_after = "10m"
[alerts.rules.match]
tier = "deploy"
msg = "deploy failed"
"#,
    );
    let (_t, sd) = shutdown::channel();
    let (h, clock) = manual(&cfg, &sd);
    let e = event(
        Tier::Deploy,
        Level::Error,
        "line",
        "deploy failed: health check",
    );
    h.offer(&e);
    h.sync().await;
    for minute in [3, 6, 8] {
        clock.set(T0 + minute * 60_000);
        h.offer(&e);
        h.sync().await;
    }
    // Minute 6 is past suppress_for: the same severity again, count 2
    // (minute 3 was suppressed but counts).
    let got: Vec<_> = hook.accepted().iter().map(|r| r.json()).collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1]["count"], 2);
    assert_eq!(got[1]["severity"], "high");
    clock.set(T0 + 9 * 60_000 + 59_999);
    h.sync().await;
    assert_eq!(hook.requests().len(), 2, "not yet 10 minutes");
    clock.set(T0 + 10 * 60_000);
    h.sync().await;
    let got: Vec<_> = hook.accepted().iter().map(|r| r.json()).collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[2]["severity"], "critical");
    assert!(got[2]["summary"]
        .as_str()
        .unwrap_or("")
        .contains("still firing"));
    clock.set(T0 + 30 * 60_000);
    h.sync().await;
    assert_eq!(hook.requests().len(), 3, "escalates once per episode");
}

#[tokio::test]
async fn reconfigure_swaps_rules_in_place() {
    let hook = Receiver::ok().await;
    let rule = |tier: &str| {
        hook_config(
            &hook.url("/"),
            &format!("[[alerts.rules]]\nname = \"r\"\nchannels = [\"webhook\"]\n[alerts.rules.match]\ntier = \"{tier}\"\n"),
        )
    };
    let (_t, sd) = shutdown::channel();
    let (h, _clock) = manual(&rule("build"), &sd);
    h.offer(&event(Tier::Deploy, Level::Error, "line", "deploy failed"));
    h.sync().await;
    assert!(hook.requests().is_empty());
    h.reconfigure(&rule("deploy")).expect("reconfigure");
    h.offer(&event(Tier::Deploy, Level::Error, "line", "deploy failed"));
    h.sync().await;
    assert_eq!(hook.accepted().len(), 1);
}
