//! The backlog gauges count jobs submitted and not yet done, in bytes as
//! stored; the uploader is their only writer. The in-process test holds the
//! binary's metrics lock: the metrics are process-wide.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use logship::ops::metrics::metrics;
use logship::ship::s3::S3Bucket;
use logship::ship::uploader::{UploadJob, UploadTicket, Uploader, UploaderConfig};
use logship::ship::ObjectMeta;
use support::agent::{append, assert_exactly_once, numbered, Agent};
use support::garage::Garage;
use support::s3_proxy::{Faults, Proxy};
use tokio::sync::mpsc;

#[tokio::test]
async fn backlog_gauges_follow_submitted_and_done_jobs() {
    let _metrics = support::metrics_lock().await;
    let Some(mut g) = Garage::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = UploaderConfig {
        concurrency: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        slow_retry: Duration::from_millis(100),
        ..UploaderConfig::default()
    };
    g.kill();
    let uploads_before = metrics().uploads.get();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(Arc::new(S3Bucket::new(&g.settings())), cfg, tx);
    let mut total = 0;
    for i in 0..3u64 {
        let path = dir.path().join(format!("{i}.gz"));
        let body = vec![b'x'; 1000 * (i as usize + 1)];
        total += body.len() as i64;
        std::fs::write(&path, body).unwrap();
        up.submit(UploadJob {
            ticket: UploadTicket(i),
            key: format!("system/2026/01/02/h-{i}.ndjson.gz"),
            gz_path: path,
            meta: ObjectMeta::default(),
        });
    }
    assert_eq!(metrics().upload_backlog_segments.get(), 3);
    assert_eq!(metrics().upload_backlog_bytes.get(), total);
    g.restart();
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("jobs finish once the server is back");
    }
    assert_eq!(metrics().upload_backlog_segments.get(), 0);
    assert_eq!(metrics().upload_backlog_bytes.get(), 0);
    assert_eq!(metrics().uploads.get(), uploads_before + 3);
}

/// The whole agent behind a failing S3 endpoint: while the outage lasts the
/// gauges show exactly the compressed segments waiting in the spool (one
/// writer, one unit), and once it drains they are exactly 0.
#[test]
fn agent_backlog_gauges_are_the_spool_and_drain_to_zero() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outage = Faults {
        fail_every: 1,
        ..Faults::default()
    };
    let proxy = rt.block_on(Proxy::start(g.s3_addr, outage));
    let mut a = Agent::new(&format!(
        r#"
[agent]
instance_id = "backlog-host"
data_dir = "{{data}}"
shutdown_timeout = "20s"
[segments]
commit_interval = "50ms"
max_bytes = "16KiB"
max_age = "1s"
[[sources]]
name = "app"
include = ["{{logs}}/*.log"]
[bucket]
kind = "s3"
endpoint = "{endpoint}"
region = "{region}"
bucket = "{bucket}"
access_key_id = "{ak}"
secret_access_key = "{sk}"
retry_initial = "50ms"
retry_max = "200ms"
[metrics]
enabled = false
"#,
        endpoint = proxy.endpoint,
        region = g.region,
        bucket = g.bucket,
        ak = g.access_key,
        sk = g.secret_key,
    ));
    a.enable_metrics();
    let lines = numbered("backlog", 0..400);
    append(&a.logs().join("app.log"), &lines);
    a.start();
    let spool = a.data().join("spool");
    // Every line read, every segment sealed (the last one by max_age) and
    // compressed: the gauges are the spool, in files and in bytes.
    let mut waiting = 0;
    a.wait_until(
        "all segments sealed and waiting in the spool",
        Duration::from_secs(60),
        |a| {
            let files: Vec<u64> = support::agent::files_under(&spool)
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
                .collect();
            let exp = scrape(a);
            let sealed = exp.value("logship_segment_rotations_total", &[("tier", "system")]);
            let segments = support::agent::files_under(&a.data().join("system")).len();
            waiting = files.len();
            a.local_events().len() == lines.len()
                && segments == waiting
                && waiting > 1
                && sealed == Some(waiting as f64)
                && exp.value("logship_upload_backlog_segments", &[]) == Some(waiting as f64)
                && exp.value("logship_upload_backlog_bytes", &[])
                    == Some(files.iter().sum::<u64>() as f64)
        },
    );
    assert!(a.metric("logship_upload_failures_total") > 0.0);
    assert!(g.list().is_empty(), "nothing passes the outage");

    proxy.set_faults(Faults::default());
    a.wait_until("the backlog to drain", Duration::from_secs(60), |a| {
        let exp = scrape(a);
        exp.value("logship_upload_backlog_segments", &[]) == Some(0.0)
            && exp.value("logship_upload_backlog_bytes", &[]) == Some(0.0)
            && exp.value("logship_uploads_total", &[]) == Some(waiting as f64)
    });
    assert_exactly_once(&g.events(), &lines);
    // Nothing left to count, so nothing moves the gauges off 0 again.
    let exp = scrape(&mut a);
    assert_eq!(exp.value("logship_upload_backlog_segments", &[]), Some(0.0));
    assert_eq!(exp.value("logship_upload_backlog_bytes", &[]), Some(0.0));
    assert!(a.term().success());
}

fn scrape(a: &mut Agent) -> support::prom::Exposition {
    let (_, body) = a.http_get("/metrics");
    support::prom::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}
