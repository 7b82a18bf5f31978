//! Delivery through the public interface against real receivers: retries
//! on a flaky receiver, every channel's request shape, HMAC signatures, SMTP,
//! the bounded queue, and (measured, not asserted) notify latency in a storm.

use crate::support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logship::alert;
use logship::event::{Event, Level, Tier};
use logship::ops::shutdown;
use std::collections::{BTreeMap, HashMap};
use support::alert_util::*;
use support::http_receiver::Receiver;

use hmac::{Hmac, Mac};
use support::smtp_sink::SmtpSink;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_required_starttls_with_private_ca() {
    let (smtp, ca) = SmtpSink::start_tls();
    let cfg = config(&format!(
        r#"[alerts.channels.email]
host = "localhost"
port = {}
tls = "starttls"
ca_file = "{}"
from = "alerts@example.com"
to = ["oncall@example.com"]
max_attempts = 1
[[alerts.rules]]
name = "deploy_failed"
channels = ["email"]
"#,
        smtp.port,
        ca.display()
    ));
    let (_t, sd) = shutdown::channel();
    let h = alert::start(&cfg, "host-1", sd).expect("start");
    h.offer(&event(Tier::Deploy, Level::Error, "line", "deploy failed"));
    h.sync().await;
    let s = h.stats().expect("stats");
    assert_eq!(
        s.delivery_failures.load(Ordering::SeqCst),
        0,
        "TLS handshake or send failed"
    );
    assert_eq!(smtp.messages().len(), 1);
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
