//! Credential rotation against a real S3 server (Garage): an agent whose
//! bucket rejects its key (403) keeps every segment, says so in metrics and
//! readiness, logs the repeating rejection once rather than per retry, and
//! after a reload with the right key ships everything — exactly once, with no
//! restart.

use crate::support;

use std::time::Duration;

use support::agent::{append, assert_exactly_once, numbered, strip_ansi, Agent};
use support::garage::Garage;

fn config(g: &Garage, secret: &str) -> String {
    format!(
        r#"
[agent]
instance_id = "rotating"
data_dir = "{{data}}"
shutdown_timeout = "20s"
[segments]
commit_interval = "50ms"
max_bytes = "2KiB"
[[sources]]
name = "app"
include = ["{{logs}}/*.log"]
[bucket]
kind = "s3"
endpoint = "{endpoint}"
region = "{region}"
bucket = "{bucket}"
access_key_id = "{ak}"
secret_access_key = "{secret}"
retry_initial = "50ms"
retry_max = "200ms"
retry_rejected = "100ms"
not_ready_after = "1s"
[metrics]
enabled = true
listen = "127.0.0.1:0"
"#,
        endpoint = g.endpoint,
        region = g.region,
        bucket = g.bucket,
        ak = g.access_key,
    )
}

#[test]
fn a_reload_with_new_credentials_ships_without_a_restart() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    // The key id is known to the store, the secret is not: every request
    // is signed wrongly and answered 403 SignatureDoesNotMatch.
    let wrong: String = g.secret_key.chars().rev().collect();
    assert_ne!(wrong, g.secret_key);
    let mut a = Agent::new(&config(&g, &wrong));
    let lines = numbered("rotate", 0..200);
    append(&a.logs().join("app.log"), &lines);
    a.start();
    let pid = a.pid();
    a.wait_local(lines.len());
    a.wait_until("repeated rejections", Duration::from_secs(60), |a| {
        a.metric("logship_upload_failures_total") >= 30.0
    });
    a.wait_until(
        "not ready while uploads fail",
        Duration::from_secs(60),
        |a| a.http_get("/readyz").0 == 503,
    );
    assert!(
        g.list().is_empty(),
        "nothing can be stored with the wrong key"
    );
    let failures = a.metric("logship_upload_failures_total");
    let log = strip_ansi(&a.stderr());
    let logged = log.matches("upload REJECTED").count();
    assert!(logged >= 1, "the rejection is logged:\n{log}");
    assert!(
        (logged as f64) * 10.0 <= failures,
        "{logged} log lines for {failures} failures: repeats must be rate-limited"
    );
    assert!(
        log.contains("SignatureDoesNotMatch") || log.contains("403"),
        "{log}"
    );

    // The operator fixes the key and reloads: same process, new client.
    let reloads_before = a.metric("logship_config_reloads_total{result=\"ok\"}");
    a.write_config(&config(&g, &g.secret_key));
    support::agent::signal(pid, libc::SIGHUP);
    a.wait_until("the reload", Duration::from_secs(30), |a| {
        a.metric("logship_config_reloads_total{result=\"ok\"}") > reloads_before
    });
    a.wait_until(
        "the backlog shipped with the new key",
        Duration::from_secs(60),
        |a| {
            a.metric("logship_upload_backlog_segments") == 0.0
                && a.metric("logship_uploads_total") >= 1.0
                && a.http_get("/readyz").0 == 200
        },
    );
    assert_eq!(a.pid(), pid, "no restart");
    assert!(a.alive());
    let log = strip_ansi(&a.stderr());
    assert!(log.contains("bucket client rebuilt"), "{log}");
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    assert_exactly_once(&g.events(), &lines);
}
