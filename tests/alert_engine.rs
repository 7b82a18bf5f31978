//! The alert engine through its public interface (`start_with`, `offer`,
//! `sync`) against real receivers: windows on a hand-driven clock, delivery
//! retries, every channel's request shape, SMTP, signatures, the bounded
//! queue, and (measured, not asserted) notify latency in a storm.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use logship::alert::{self, AlertHandle, AlertsConfig, ManualClock, Options};
use logship::event::{Event, Level, Tier};
use logship::ops::shutdown;
use support::http_receiver::Receiver;
use support::smtp_sink::SmtpSink;

fn config(text: &str) -> AlertsConfig {
    logship::config::load_str(Path::new("t.toml"), text.to_string(), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
        .alerts
}

fn event(tier: Tier, lvl: Level, kind: &str, msg: &str) -> Event {
    let mut e = Event::empty(tier);
    e.lvl = lvl;
    e.kind = kind.into();
    e.msg = msg.into();
    e.instance_id = "host-1".into();
    e.src = "app".into();
    e
}

const T0: i64 = 1_736_812_345_678;

fn manual(cfg: &AlertsConfig, sd: &shutdown::Shutdown) -> (AlertHandle, ManualClock) {
    let clock = ManualClock::new(T0);
    let opts = Options {
        clock: Arc::new(clock.clone()),
        // Ticks only through sync(): time moves when the test says so.
        tick: Duration::from_secs(3600),
        ..Options::default()
    };
    (
        alert::start_with(cfg, "host-1", sd.clone(), opts).expect("start"),
        clock,
    )
}

fn hook_config(hook: &str, rules: &str) -> AlertsConfig {
    config(&format!(
        "[alerts.channels.webhook]\nurl = \"{hook}\"\nretry_initial = \"5ms\"\n{rules}"
    ))
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_every_alert_exactly_once() {
    // 30% of requests answered 500 (every 10 requests: #0, #3, #6).
    let hook = Receiver::start(Arc::new(|n, _| {
        if [0, 3, 6].contains(&(n % 10)) {
            500
        } else {
            200
        }
    }))
    .await;
    let cfg = config(&format!(
        r#"[alerts.channels.webhook]
url = "{}"
max_attempts = 30
retry_initial = "2ms"
retry_max = "20ms"
[[alerts.rules]]
name = "any_error"
channels = ["webhook"]
[alerts.rules.match]
lvl = "error"
"#,
        hook.url("/hook")
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    for i in 0..40 {
        // Distinct kinds -> distinct fingerprints.
        h.offer(&event(Tier::System, Level::Error, &format!("k{i}"), "boom"));
    }
    h.sync().await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in hook.accepted() {
        *seen
            .entry(r.json()["fingerprint"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert!(hook.requests().len() > 40, "some attempts were refused");
    let s = h.stats().expect("stats");
    assert_eq!(s.delivered.load(Ordering::SeqCst), 40);
    assert_eq!(s.delivery_failures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_counts() {
    let hook = Receiver::start(Arc::new(|_, _| 503)).await;
    let bad_request = Receiver::start(Arc::new(|_, _| 400)).await;
    let cfg = config(&format!(
        "[alerts.channels.a]\ntype = \"webhook\"\nurl = \"{}\"\nmax_attempts = 3\nretry_initial = \"1ms\"\n\
         [alerts.channels.b]\ntype = \"webhook\"\nurl = \"{}\"\nmax_attempts = 3\nretry_initial = \"1ms\"\n\
         [[alerts.rules]]\nname = \"r\"\nchannels = [\"a\", \"b\"]\n",
        hook.url("/"),
        bad_request.url("/")
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    h.offer(&event(Tier::System, Level::Error, "line", "x"));
    h.sync().await;
    assert_eq!(hook.requests().len(), 3, "5xx retried up to max_attempts");
    assert_eq!(bad_request.requests().len(), 1, "4xx is not retried");
    assert_eq!(
        h.stats()
            .expect("stats")
            .delivery_failures
            .load(Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn webhook_payload_and_hmac_signature() {
    let hook = Receiver::ok().await;
    let cfg = config(&format!(
        r#"[alerts.channels.webhook]
url = "{}"
secret = "s3cr3t"
[[alerts.rules]]
name = "deploy_failed"
severity = "high"
channels = ["webhook"]
[alerts.rules.match]
tier = "deploy"
"#,
        hook.url("/hook")
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-9", sd).expect("start");
    let mut e = event(
        Tier::Deploy,
        Level::Error,
        "deploy",
        "deploy 4f3a9c21 failed",
    );
    e.ts = 1_736_812_345_678;
    h.offer(&e);
    h.sync().await;
    let got = hook.accepted();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let sig = r.header("x-logship-signature").expect("signature header");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t").expect("key");
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("sha256={want}"));

    let v = r.json();
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut want_keys = vec![
        "rule",
        "severity",
        "fingerprint",
        "count",
        "first_ts",
        "last_ts",
        "instanceId",
        "summary",
        "event",
    ];
    want_keys.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, want_keys);
    assert_eq!(v["rule"], "deploy_failed");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["count"], 1);
    assert_eq!(v["first_ts"], 1_736_812_345_678i64);
    assert_eq!(v["last_ts"], 1_736_812_345_678i64);
    assert_eq!(v["instanceId"], "host-9");
    let fp = v["fingerprint"].as_str().expect("fingerprint");
    assert!(fp.len() == 40 && fp.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        fp,
        logship::alert::fingerprint::fingerprint("deploy_failed", &e)
    );
    assert_eq!(v["event"]["msg"], "deploy 4f3a9c21 failed");
    assert_eq!(v["event"]["tier"], "deploy");
}

#[tokio::test]
async fn chat_pagerduty_and_twilio_request_shapes() {
    let rx = Receiver::ok().await;
    let cfg = config(&format!(
        r#"[alerts.channels.webhook]
url = "{base}/hook"
[alerts.channels.slack]
url = "{base}/slack"
[alerts.channels.discord]
url = "{base}/discord"
[alerts.channels.oncall]
type = "pagerduty"
routing_key = "rk-123"
api_url = "{base}"
[alerts.channels.sms]
api_url = "{base}/"
account_sid = "AC123"
auth_token = "tok"
from = "+15550000000"
to = ["+15551111111", "+15552222222"]
[alerts.channels.off]
type = "slack"
enabled = false
url = "{base}/never"
[[alerts.rules]]
name = "deploy_failed"
severity = "critical"
channels = ["webhook", "slack", "discord", "oncall", "sms", "off"]
[alerts.rules.match]
tier = "deploy"
"#,
        base = format!("http://{}", rx.addr)
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    h.offer(&event(Tier::Deploy, Level::Error, "line", "deploy failed"));
    h.sync().await;
    let reqs = rx.accepted();
    let by_path: BTreeMap<String, Vec<_>> = reqs.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.path.clone())
            .or_insert_with(Vec::new)
            .push(r.clone());
        m
    });
    assert!(
        !by_path.contains_key("/never"),
        "disabled channel stays silent"
    );
    let fp = by_path["/hook"][0].json()["fingerprint"]
        .as_str()
        .expect("fp")
        .to_string();

    let slack = by_path["/slack"][0].json();
    assert!(slack["text"]
        .as_str()
        .expect("text")
        .contains("[CRITICAL] deploy_failed"));
    let discord = by_path["/discord"][0].json();
    assert!(discord["content"]
        .as_str()
        .expect("content")
        .contains("deploy_failed"));

    let pd = by_path["/v2/enqueue"][0].json();
    assert_eq!(pd["routing_key"], "rk-123");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], fp.as_str());
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(pd["payload"]["source"], "host-1");
    assert!(pd["payload"]["summary"]
        .as_str()
        .expect("summary")
        .contains("deploy_failed"));

    let sms = &by_path["/2010-04-01/Accounts/AC123/Messages.json"];
    assert_eq!(sms.len(), 2, "one message per recipient");
    for r in sms {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("authorization").as_deref(),
            Some("Basic QUMxMjM6dG9r")
        );
        assert!(r
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/x-www-form-urlencoded"));
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("From=%2B15550000000"), "{body}");
        assert!(body.contains("Body=%5BCRITICAL%5D+deploy_failed"), "{body}");
    }
    let to: Vec<String> = sms
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(to.iter().any(|b| b.contains("To=%2B15551111111")));
    assert!(to.iter().any(|b| b.contains("To=%2B15552222222")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_arrives_at_smtp_server() {
    let smtp = SmtpSink::start();
    let cfg = config(&format!(
        r#"[alerts.channels.email]
host = "127.0.0.1"
port = {}
tls = "none"
from = "logship <alerts@example.com>"
to = ["oncall@example.com", "dev@example.com"]
[[alerts.rules]]
name = "build_failed"
severity = "high"
channels = ["email"]
[alerts.rules.match]
tier = "build"
"#,
        smtp.port
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    h.offer(&event(
        Tier::Build,
        Level::Error,
        "line",
        "build b-77 failed",
    ));
    h.sync().await;
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert!(
        m.contains("X-Envelope-To: oncall@example.com,dev@example.com"),
        "{m}"
    );
    assert!(
        m.contains("Subject: [logship] high build_failed: build b-77 failed"),
        "{m}"
    );
    assert!(m.contains("fingerprint: "), "{m}");
    assert_eq!(
        h.stats().expect("stats").delivered.load(Ordering::SeqCst),
        1
    );
}

#[test]
fn full_queue_skips_and_counts_without_blocking() {
    // A current-thread runtime: the engine cannot run while this test holds
    // the thread, so exactly `capacity` events fit.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let cfg = config(
            "[alerts]\nqueue_capacity = 2\n[alerts.channels.webhook]\nurl = \"http://127.0.0.1:9/\"\n\
             [[alerts.rules]]\nname = \"r\"\nchannels = [\"webhook\"]\n[alerts.rules.match]\nlvl = \"error\"\n",
        );
        let (_t, sd) = shutdown::channel();
        let h = alert::start(&cfg, "host-1", sd).expect("start");
        let before = logship::ops::metrics::metrics().dropped("alert_queue_full").get();
        for _ in 0..10 {
            h.offer(&event(Tier::System, Level::Error, "line", "x"));
            // Not matched by any rule: never queued, never dropped.
            h.offer(&event(Tier::System, Level::Info, "line", "x"));
        }
        let s = h.stats().expect("stats");
        assert_eq!(s.queue_full.load(Ordering::SeqCst), 8);
        assert!(logship::ops::metrics::metrics().dropped("alert_queue_full").get() >= before + 8);
    });
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

/// Measured, not asserted: latency from `offer` (on a plain thread, as the
/// pipeline does) to the webhook receiving the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_latency_report() {
    // Many events, few problems (the usual storm), then many problems.
    storm(5000, 5).await;
    storm(5000, 500).await;
}

async fn storm(events: usize, problems: usize) {
    let hook = Receiver::ok().await;
    let cfg = config(&format!(
        "[alerts.channels.webhook]\nurl = \"{}\"\nrate_limit = 100000\n\
         [[alerts.rules]]\nname = \"storm\"\nchannels = [\"webhook\"]\n[alerts.rules.match]\nlvl = \"error\"\n",
        hook.url("/")
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    let producer = h.clone();
    let (offered, offer_cost) = std::thread::spawn(move || {
        let batch: Vec<Event> = (0..events)
            .map(|i| {
                event(
                    Tier::System,
                    Level::Error,
                    &format!("k{}", i % problems),
                    "request 98765 failed",
                )
            })
            .collect();
        let mut first: HashMap<String, Instant> = HashMap::new();
        let mut cost = Duration::ZERO;
        for e in &batch {
            let t = Instant::now();
            producer.offer(e);
            cost += t.elapsed();
            first.entry(e.kind.clone()).or_insert(t);
        }
        (first, cost / events as u32)
    })
    .join()
    .expect("producer");
    h.sync().await;
    let got = hook.accepted();
    let mut lat: Vec<Duration> = got
        .iter()
        .filter_map(|r| {
            let kind = r.json()["event"]["kind"].as_str()?.to_string();
            Some(r.at.duration_since(*offered.get(&kind)?))
        })
        .collect();
    lat.sort();
    let dropped = h.stats().expect("stats").queue_full.load(Ordering::SeqCst);
    if !lat.is_empty() {
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
        eprintln!(
            "alert storm: {events} events, {} notifications, {dropped} dropped; offer() {offer_cost:?}/event; offer->webhook p50 {:?} p99 {:?} max {:?}",
            lat.len(),
            p(0.5),
            p(0.99),
            lat[lat.len() - 1]
        );
    }
    if dropped == 0 {
        assert_eq!(got.len(), problems, "one notification per problem");
    }
}
