//! The backlog gauges count jobs submitted and not yet done. Holds the
//! binary's metrics lock: the metrics are process-wide.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use logship::ops::metrics::metrics;
use logship::ship::s3::S3Bucket;
use logship::ship::uploader::{UploadJob, Uploader, UploaderConfig};
use logship::ship::ObjectMeta;
use support::garage::Garage;
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
    };
    g.kill();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(Arc::new(S3Bucket::new(&g.settings())), cfg, tx);
    let mut total = 0;
    for i in 0..3u64 {
        let path = dir.path().join(format!("{i}.gz"));
        let body = vec![b'x'; 1000 * (i as usize + 1)];
        total += body.len() as i64;
        std::fs::write(&path, body).unwrap();
        up.submit(UploadJob {
            segment: i,
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
    assert!(metrics().uploads.get() >= 3);
}
