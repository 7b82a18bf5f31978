//! Fleet-wide suppression over TLS (`rediss://`): a real `redis-server`
//! that listens only with TLS, its certificate from a throwaway CA given to
//! the agents as `alerts.redis_ca_file`. Two agents see the same failure;
//! the second one is suppressed through Redis. Without the CA the server's
//! certificate is not trusted, so suppression is per process and both agents
//! notify — the TLS check is real.

use crate::support;

use std::time::Duration;

use support::agent::{append, strip_ansi, Agent};
use support::http_receiver::Receiver;
use support::redis_server::RedisServer;

fn agent(name: &str, redis: &RedisServer, ca: bool, hook: &str) -> Agent {
    let ca_line = if ca {
        format!("redis_ca_file = \"{}\"", redis.ca_cert().display())
    } else {
        String::new()
    };
    let a = Agent::new(&format!(
        r#"
[agent]
instance_id = "{name}"
data_dir = "{{data}}"
[segments]
commit_interval = "50ms"
[[sources]]
name = "app"
include = ["{{logs}}/*.log"]
[alerts]
redis_url = "{url}"
{ca_line}
[alerts.channels.webhook]
url = "{hook}"
[[alerts.rules]]
name = "payment_down"
severity = "high"
channels = ["webhook"]
suppress_for = "10m"
[alerts.rules.match]
lvl = "error"
msg = "payment provider unreachable"
[metrics]
enabled = false
"#,
        url = redis.url(),
    ));
    a.enable_metrics();
    a
}

const LINE: &str = "ERROR payment provider unreachable after 3 retries";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_is_fleet_wide_over_tls_with_a_private_ca() {
    let redis = RedisServer::start_tls();
    let hook = Receiver::ok().await;
    let mut a = agent("node-a", &redis, true, &hook.url("/hook"));
    let mut b = agent("node-b", &redis, true, &hook.url("/hook"));
    a.start();
    append(&a.logs().join("app.log"), &[LINE.to_string()]);
    hook.wait_until("the first notification", |r| !r.is_empty())
        .await;
    b.start();
    append(&b.logs().join("app.log"), &[LINE.to_string()]);
    // node-b judged the same fingerprint through Redis: suppressed.
    tokio::task::block_in_place(|| {
        b.wait_until("node-b's suppression", Duration::from_secs(60), |b| {
            b.metric("logship_alerts_suppressed_total{rule=\"payment_down\"}") >= 1.0
        })
    });
    assert_eq!(hook.accepted().len(), 1, "one notification for the fleet");
    for ag in [&a, &b] {
        let log = strip_ansi(&ag.stderr());
        assert!(!log.contains("suppression is per process"), "{log}");
    }
    assert!(a.term().success());
    assert!(b.term().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_certificate_is_refused_and_suppression_is_local() {
    let redis = RedisServer::start_tls();
    let hook = Receiver::ok().await;
    let mut a = agent("node-a", &redis, false, &hook.url("/hook"));
    let mut b = agent("node-b", &redis, false, &hook.url("/hook"));
    a.start();
    b.start();
    append(&a.logs().join("app.log"), &[LINE.to_string()]);
    append(&b.logs().join("app.log"), &[LINE.to_string()]);
    hook.wait_until("one notification per agent", |r| r.len() >= 2)
        .await;
    for ag in [&a, &b] {
        let log = strip_ansi(&ag.stderr());
        assert!(
            log.contains("alert suppression falls back to this process"),
            "the agent says Redis is not usable:\n{log}"
        );
    }
    assert!(a.term().success());
    assert!(b.term().success());
}
