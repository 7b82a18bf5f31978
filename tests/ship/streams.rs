//! `[streams]` against a real `redis-server` (SPEC §12): events of the
//! listed tiers reach their stream in order, exactly as written locally;
//! the stream stays near `maxlen`; a Redis killed mid-run costs stream
//! events (counted, one warning) but nothing in the bucket, and publishing
//! resumes by itself; a Redis held by `DEBUG SLEEP` does not hold the
//! pipeline.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::agent::{append, assert_exactly_once, Agent};
use support::redis_server::RedisServer;

/// An agent with a `deploy` source (`deploy.log`) and a `system` source
/// (`app.log`), publishing `[streams]` (`streams_extra` added) to `redis`.
fn agent(redis: &RedisServer, streams_extra: &str) -> Agent {
    Agent::with(
        "",
        &format!(
            r#"
[[sources]]
name = "deploys"
include = ["{{logs}}/deploy.log"]
tier = "deploy"

[[sources]]
name = "app"
include = ["{{logs}}/app.log"]

[streams]
redis_url = "{url}"
tiers = ["deploy"]
{streams_extra}
"#,
            url = redis.url()
        ),
    )
}

fn conn(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// The `event` field of every entry of `key`, oldest first.
fn stream(redis: &RedisServer, key: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(&mut conn(redis))
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            assert_eq!(fields.len(), 1, "one field per entry: {fields:?}");
            assert_eq!(fields[0].0, "event");
            fields[0].1.clone()
        })
        .collect()
}

fn xlen(redis: &RedisServer, key: &str) -> usize {
    redis::cmd("XLEN").arg(key).query(&mut conn(redis)).unwrap()
}

/// JSON deploy lines with a project id, numbered `range`.
fn deploy_lines(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!(r#"{{"level":"info","projectId":"p1","msg":"{tag} deploy {i:05}"}}"#))
        .collect()
}

fn msgs(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["msg"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn listed_tiers_reach_their_stream_in_order_as_written() {
    let redis = RedisServer::start();
    let mut a = agent(
        &redis,
        "key = \"logship:{tier}:{projectId}\"\nmaxlen = 100000\n",
    );
    a.start();
    let deploys = deploy_lines("a", 0..400);
    append(&a.logs().join("deploy.log"), &deploys);
    let system: Vec<String> = (0..200).map(|i| format!("system line {i}")).collect();
    append(&a.logs().join("app.log"), &system);
    a.wait_until(
        "400 deploy events in the stream",
        Duration::from_secs(60),
        |_| xlen(&redis, "logship:deploy:p1") >= 400,
    );
    a.wait_local(600);
    let lines = stream(&redis, "logship:deploy:p1");
    let events: Vec<logship::event::Event> = lines
        .iter()
        .map(|l| logship::event::Event::from_json(l).unwrap())
        .collect();
    // In write order, once each, with the unified fields.
    assert_eq!(
        events.iter().map(|e| e.msg.clone()).collect::<Vec<_>>(),
        msgs(&deploys)
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    for e in &events {
        assert_eq!(e.tier, logship::event::Tier::Deploy);
        assert_eq!(e.instance_id, "test-host");
        assert_eq!(e.project_id.as_deref(), Some("p1"));
    }
    // Each entry is the NDJSON line exactly as written to the segment.
    let local: std::collections::HashSet<String> =
        support::agent::files_under(&a.data().join("deploys"))
            .into_iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
    assert!(
        lines.iter().all(|l| local.contains(l)),
        "stream lines differ from the segment's"
    );
    // Tiers not listed are not published.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut conn(&redis))
        .unwrap();
    assert_eq!(keys, ["logship:deploy:p1"]);
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
}

#[test]
fn the_stream_stays_near_maxlen() {
    let redis = RedisServer::start();
    let maxlen = 200;
    let mut a = agent(&redis, &format!("maxlen = {maxlen}\n"));
    a.start();
    let deploys = deploy_lines("m", 0..3000);
    for chunk in deploys.chunks(500) {
        append(&a.logs().join("deploy.log"), chunk);
    }
    let last = msgs(&deploys).pop().unwrap();
    a.wait_until(
        "the last deploy event in the stream",
        Duration::from_secs(60),
        |_| {
            stream(&redis, "logship:deploy")
                .last()
                .is_some_and(|l| l.contains(&last))
        },
    );
    // `MAXLEN ~` trims whole stream nodes: at most one node above maxlen.
    let (_, node): (String, usize) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("stream-node-max-entries")
        .query(&mut conn(&redis))
        .unwrap();
    let len = xlen(&redis, "logship:deploy");
    assert!(
        len >= maxlen && len <= maxlen + node,
        "XLEN {len}, maxlen {maxlen}, node {node}"
    );
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
}

#[test]
fn redis_killed_mid_run_loses_nothing_in_the_bucket_and_publishing_resumes() {
    let mut redis = RedisServer::start();
    // A queue smaller than what the outage brings (but large enough for
    // one commit's worth of the first batch).
    let mut a = agent(&redis, "queue = 300\nbatch = 10\n");
    a.enable_metrics();
    a.start();
    let log = a.logs().join("deploy.log");
    let before = deploy_lines("before", 0..200);
    append(&log, &before);
    a.wait_until(
        "the first events in the stream",
        Duration::from_secs(60),
        |_| xlen(&redis, "logship:deploy") >= 200,
    );
    redis.kill();
    let during = deploy_lines("during", 0..1000);
    for chunk in during.chunks(50) {
        append(&log, chunk);
        std::thread::sleep(Duration::from_millis(20));
    }
    a.wait_local(1200);
    a.wait_until("stream drops counted", Duration::from_secs(30), |a| {
        a.metric("logship_events_dropped_total{reason=\"stream\"}") > 0.0
    });
    redis.restart();
    a.wait_until("the publisher back", Duration::from_secs(30), |a| {
        a.stderr().contains("Redis reachable again")
    });
    let after = deploy_lines("after", 0..100);
    let last = msgs(&after).pop().unwrap();
    append(&log, &after);
    a.wait_until("publishing resumed", Duration::from_secs(60), |_| {
        stream(&redis, "logship:deploy")
            .iter()
            .any(|l| l.contains(&last))
    });
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    // One warning for the outage, one line when it ended.
    let log_text = support::agent::strip_ansi(&a.stderr());
    assert_eq!(
        log_text.matches("Redis unreachable or too slow").count(),
        1,
        "{log_text}"
    );
    assert_eq!(
        log_text.matches("Redis reachable again").count(),
        1,
        "{log_text}"
    );
    // The bucket has every line exactly once.
    let all: Vec<String> = [before, during, after].concat();
    assert_exactly_once(&a.bucket_events(), &msgs(&all));
}

#[test]
fn a_redis_held_by_debug_sleep_does_not_stall_the_pipeline() {
    let redis = RedisServer::start();
    let mut a = agent(&redis, "queue = 50\nbatch = 10\n");
    a.enable_metrics();
    a.start();
    let log = a.logs().join("deploy.log");
    let warm = deploy_lines("warm", 0..10);
    append(&log, &warm);
    a.wait_until(
        "the first events in the stream",
        Duration::from_secs(60),
        |_| xlen(&redis, "logship:deploy") >= 10,
    );
    // Another client holds Redis; this thread notes when it lets go.
    let released = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let (url, released) = (redis.url(), released.clone());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let _: () = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(15)
                .query(&mut c)
                .unwrap();
            released.store(true, Ordering::SeqCst);
        })
    };
    // Let the DEBUG SLEEP reach the server before writing.
    std::thread::sleep(Duration::from_millis(300));
    let slow = deploy_lines("slow", 0..2000);
    append(&log, &slow);
    // Every event is written while Redis still sleeps.
    a.wait_local(2010);
    assert!(
        !released.load(Ordering::SeqCst),
        "the pipeline waited for Redis: its events were written only after DEBUG SLEEP ended"
    );
    // The events the full queue could not take are counted.
    a.wait_until("stream drops counted", Duration::from_secs(30), |a| {
        a.metric("logship_events_dropped_total{reason=\"stream\"}") > 0.0
    });
    sleeper.join().unwrap();
    // And publishing goes on once the publisher has noticed Redis is back
    // (until then the queue is full and new events are dropped, too).
    a.wait_until("the publisher back", Duration::from_secs(30), |a| {
        a.stderr().contains("Redis reachable again")
    });
    let after = deploy_lines("after", 0..20);
    let last = msgs(&after).pop().unwrap();
    append(&log, &after);
    a.wait_until(
        "publishing after the sleep",
        Duration::from_secs(60),
        |_| {
            stream(&redis, "logship:deploy")
                .iter()
                .any(|l| l.contains(&last))
        },
    );
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
}

#[test]
fn streams_over_tls_with_a_private_ca() {
    let redis = RedisServer::start_tls();
    let mut a = agent(
        &redis,
        &format!("redis_ca_file = \"{}\"\n", redis.ca_cert().display()),
    );
    a.start();
    let deploys = deploy_lines("tls", 0..50);
    append(&a.logs().join("deploy.log"), &deploys);
    let ca = std::fs::read(redis.ca_cert()).unwrap();
    let client = redis::Client::build_with_tls(
        redis.url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .unwrap();
    logship::ops::redis::ensure_tls_provider();
    a.wait_until("50 events over TLS", Duration::from_secs(60), |_| {
        let mut c = client.get_connection().unwrap();
        redis::cmd("XLEN")
            .arg("logship:deploy")
            .query::<usize>(&mut c)
            .unwrap()
            >= 50
    });
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
}

#[test]
fn check_accepts_streams_and_masks_the_redis_password() {
    let a = Agent::with(
        "",
        "[streams]\nredis_url = \"redis://:hunter2@127.0.0.1:6379\"\ntiers = [\"build\"]\n",
    );
    let out = std::process::Command::new(support::agent::BIN)
        .args(["check", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("streams: redis=redis://***@127.0.0.1:6379"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // And refuses what the agent would fail on, with its position.
    a.write_config("[streams]\nredis_url = \"redis://h\"\nkey = \"x:{buildId}\"\n");
    let out = std::process::Command::new(support::agent::BIN)
        .args(["check", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("agent.toml:3:7: streams.key has an unknown placeholder {buildId}"),
        "{err}"
    );
}
