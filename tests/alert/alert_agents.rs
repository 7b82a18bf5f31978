//! The alert check as an operator would run it: real agents tailing real
//! files, one Redis shared by the fleet, one webhook receiver. Thousands of
//! matching lines with dynamic ids give one notification per fingerprint per
//! window across all agents; latency from append to receipt is reported.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::agent::{append, Agent};
use support::http_receiver::Receiver;
use support::redis_server::RedisServer;

fn agent(name: &str, redis: &str, hook: &str) -> Agent {
    Agent::new(&format!(
        r#"
[agent]
instance_id = "{name}"
data_dir = "{{data}}"
[segments]
commit_interval = "50ms"
[[sources]]
name = "builds"
include = ["{{logs}}/*.log"]
tier = "build"
[alerts]
redis_url = "{redis}"
[alerts.channels.webhook]
url = "{hook}"
[[alerts.rules]]
name = "build_failed"
severity = "high"
channels = ["webhook"]
suppress_for = "10m"
[alerts.rules.match]
tier = "build"
lvl = "error"
msg = "(?i)build .* failed"
[metrics]
enabled = false
"#
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_storm_notifies_once_per_fingerprint() {
    let redis = RedisServer::start();
    let hook = Receiver::ok().await;
    let mut agents: Vec<Agent> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| agent(n, &redis.url(), &hook.url("/hook")))
        .collect();
    for a in &mut agents {
        a.start();
    }
    // Two distinct problems, each with thousands of dynamic-id variants
    // (build ids, durations, hex request ids normalize away).
    let started = Instant::now();
    for round in 0..4 {
        for (i, a) in agents.iter().enumerate() {
            let lines: Vec<String> = (0..250)
                .map(|n| {
                    let id = 10_000 + round * 1000 + n * 3 + i;
                    if n % 2 == 0 {
                        format!("ERROR build b-{id} failed: compiler exited with 2 after {id}ms req=0x{id:08x}")
                    } else {
                        format!("ERROR build b-{id} failed: tests timed out on runner {id}")
                    }
                })
                .collect();
            append(&a.logs().join("ci.log"), &lines);
        }
    }
    for a in &mut agents {
        a.wait_local(1000);
    }
    hook.wait_until("two notifications", |r| r.len() >= 2).await;
    let latency = started.elapsed();
    // Give stragglers (a duplicate, if suppression were broken) time to land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hook.accepted();
    let mut per_fp: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let v = r.json();
        assert_eq!(v["rule"], "build_failed");
        assert_eq!(v["severity"], "high");
        assert_eq!(v["fingerprint"].as_str().map(str::len), Some(40));
        assert_eq!(v["event"]["tier"], "build");
        *per_fp
            .entry(v["fingerprint"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_fp.len(), 2, "two distinct problems: {per_fp:?}");
    assert!(
        per_fp.values().all(|&n| n == 1),
        "one notification per fingerprint across the fleet: {per_fp:?}"
    );
    eprintln!("3 agents, 3000 matching lines: first two notifications within {latency:?} of the first append");
    for a in &mut agents {
        assert!(a.term().success());
    }
}
