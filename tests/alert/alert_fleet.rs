//! Fleet-wide suppression through a real Redis: several engines (as if on
//! several hosts) share one `redis-server`.

use crate::support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use logship::alert::{self, AlertHandle, AlertsConfig, Options};
use logship::event::{Event, Level, Tier};
use logship::ops::shutdown;
use support::http_receiver::Receiver;
use support::redis_server::RedisServer;

fn config(redis: &str, hook: &str) -> AlertsConfig {
    let text = format!(
        r#"[alerts]
redis_url = "{redis}"
[alerts.channels.webhook]
url = "{hook}"
retry_initial = "10ms"
[[alerts.rules]]
name = "build_failed"
severity = "high"
channels = ["webhook"]
suppress_for = "1h"
[alerts.rules.match]
tier = "build"
lvl = "error"
msg = "(?i)build .* failed"
"#
    );
    logship::config::load_str(Path::new("t.toml"), text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
        .alerts
}

fn failed_build(i: u64, reason: &str) -> Event {
    let mut e = Event::empty(Tier::Build);
    e.lvl = Level::Error;
    e.kind = "line".into();
    e.build_id = Some(format!("b-{i}"));
    e.ts = 1_700_000_000_000 + i as i64;
    // Varying hex build id and a 4+ digit duration: normalized away.
    e.msg = format!(
        "build {:x} failed after {}ms: {reason}",
        0xabc0_0000u64 + i * 7919,
        1000 + i * 37
    );
    e
}

fn start(cfg: &AlertsConfig, id: &str, sd: &shutdown::Shutdown) -> AlertHandle {
    let opts = Options {
        redis_probe: Duration::from_millis(50),
        ..Options::default()
    };
    alert::start_with(cfg, id, sd.clone(), opts).expect("start engine")
}

fn by_fingerprint(r: &Receiver) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for req in r.accepted() {
        let fp = req.json()["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *m.entry(fp).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_notification_per_fingerprint() {
    let redis = RedisServer::start();
    let hook = Receiver::ok().await;
    let cfg = config(&redis.url(), &hook.url("/hook"));
    let (_stop, sd) = shutdown::channel();
    let fleet: Vec<AlertHandle> = (0..3)
        .map(|i| start(&cfg, &format!("host-{i}"), &sd))
        .collect();

    for i in 0..50 {
        fleet[(i % 3) as usize].offer(&failed_build(i, "exit code 1"));
        fleet[((i + 1) % 3) as usize].offer(&failed_build(i + 100, "out of memory"));
    }
    for h in &fleet {
        h.sync().await;
    }

    let fps = by_fingerprint(&hook);
    assert_eq!(fps.len(), 2, "two problems, two fingerprints: {fps:?}");
    assert!(fps.values().all(|&n| n == 1), "{fps:?}");
    let suppressed: u64 = fleet
        .iter()
        .map(|h| h.stats().map_or(0, |s| s.suppressed.load(Ordering::SeqCst)))
        .sum();
    assert_eq!(suppressed, 98);
    for h in &fleet {
        let s = h.stats().expect("stats");
        assert_eq!(s.redis_fallbacks.load(Ordering::SeqCst), 0);
    }
}

async fn wait_redis_up(h: &AlertHandle) {
    let s = h.stats().expect("stats");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s.redis_up.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "engine never reconnected to Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_once_and_recovers() {
    let mut redis = RedisServer::start();
    let hook = Receiver::ok().await;
    let cfg = config(&redis.url(), &hook.url("/hook"));
    let (_stop, sd) = shutdown::channel();
    let a = start(&cfg, "host-a", &sd);
    let b = start(&cfg, "host-b", &sd);

    // Before: shared.
    a.offer(&failed_build(1, "phase one"));
    b.offer(&failed_build(2, "phase one"));
    a.sync().await;
    b.sync().await;
    assert_eq!(hook.accepted().len(), 1);

    // Mid-storm outage: a plain thread (like the pipeline) keeps offering
    // while Redis is killed; each process then suppresses on its own and
    // warns once. The fingerprints of `a` and `b` differ, so each is
    // notified exactly once whichever side of the kill it was first seen on.
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    let (half_tx, half_rx) = std::sync::mpsc::channel::<()>();
    let (pa, pb) = (a.clone(), b.clone());
    let producer = std::thread::spawn(move || {
        let burst = |from: u64, phase: &str| {
            for i in from..from + 500 {
                pa.offer(&failed_build(i, &format!("{phase} on a")));
                pb.offer(&failed_build(i, &format!("{phase} on b")));
                let which = ["x", "y"][i as usize % 2];
                pa.offer(&failed_build(i, &format!("second problem on a {which}")));
            }
        };
        burst(0, "during outage");
        let _ = half_tx.send(());
        let _ = killed_rx.recv();
        // New problems after the kill: each engine must ask Redis, fail,
        // and fall back (known ones are answered from local memory).
        burst(1000, "after the kill");
    });
    let _ = half_rx.recv();
    redis.kill();
    let _ = killed_tx.send(());
    producer.join().expect("producer");
    a.sync().await;
    b.sync().await;
    let sa = a.stats().expect("stats");
    let sb = b.stats().expect("stats");
    assert_eq!(
        sa.redis_fallbacks.load(Ordering::SeqCst),
        1,
        "one warning per outage"
    );
    assert_eq!(
        sb.redis_fallbacks.load(Ordering::SeqCst),
        1,
        "one warning per outage"
    );
    // 1 before + a: 4 problems + b: 2 problems.
    assert_eq!(hook.accepted().len(), 7, "{:#?}", by_fingerprint(&hook));

    // Redis returns: both engines go back to it, suppression is shared again.
    redis.restart();
    wait_redis_up(&a).await;
    wait_redis_up(&b).await;
    for i in 0..10 {
        a.offer(&failed_build(i, "after recovery"));
    }
    a.sync().await;
    for i in 0..10 {
        b.offer(&failed_build(i + 50, "after recovery"));
        // Notified by `a` alone during the outage; `a` published it to
        // Redis on recovery, so `b` stays quiet.
        b.offer(&failed_build(i + 50, "during outage on a"));
    }
    b.sync().await;
    let fps = by_fingerprint(&hook);
    assert_eq!(fps.len(), 8, "{fps:?}");
    assert!(fps.values().all(|&n| n == 1), "{fps:?}");
    assert_eq!(sa.redis_fallbacks.load(Ordering::SeqCst), 1);
    assert_eq!(sb.redis_fallbacks.load(Ordering::SeqCst), 1);
}
