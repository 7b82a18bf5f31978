//! The upload queue against a real S3 server (Garage): faults, outages,
//! rejections and re-submission after a crash. No timing thresholds: tests
//! wait for outcomes, bounded by generous deadlines.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use logship::ship::s3::{content_md5, S3Bucket};
use logship::ship::uploader::{UploadJob, UploadTicket, Uploader, UploaderConfig};
use logship::ship::{Bucket, ObjectInfo, ObjectMeta, ShipError};
use support::garage::Garage;
use support::s3_proxy::{Faults, Proxy};
use tokio::sync::mpsc;

fn fast() -> UploaderConfig {
    UploaderConfig {
        concurrency: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        slow_retry: Duration::from_millis(100),
        ..UploaderConfig::default()
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `n` jobs with files in `dir`; returns the jobs and the bytes by key.
fn jobs(dir: &Path, n: u64, size: usize) -> (Vec<UploadJob>, BTreeMap<String, Vec<u8>>) {
    let mut out = Vec::new();
    let mut bytes = BTreeMap::new();
    for i in 0..n {
        let key = format!("system/2026/01/02/host-1-{i:026}.ndjson.gz");
        let body = noise(size + i as usize, i + 1);
        let path = dir.join(format!("{i}.ndjson.gz"));
        std::fs::write(&path, &body).unwrap();
        bytes.insert(key.clone(), body);
        out.push(UploadJob {
            ticket: UploadTicket(i),
            key,
            gz_path: path,
            meta: ObjectMeta {
                first_ts: 1000 + i as i64,
                last_ts: 2000 + i as i64,
                lines: 10 + i,
                tier: "system".into(),
                instance_id: "host-1".into(),
            },
        });
    }
    (out, bytes)
}

/// Wait for `n` completions (deadline: a minute) and return their ticket
/// numbers in order.
async fn collect(rx: &mut mpsc::UnboundedReceiver<UploadTicket>, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(ticket)) => got.push(ticket.0),
            other => panic!("only {} of {n} jobs done ({other:?}): {got:?}", got.len()),
        }
    }
    got
}

fn assert_stored(g: &Garage, expected: &BTreeMap<String, Vec<u8>>) {
    let listed = g.list();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "bucket holds other keys than the jobs'"
    );
    for (key, body) in expected {
        let o = g.get(key).unwrap();
        assert_eq!(content_md5(&o.bytes), content_md5(body), "{key}");
    }
}

#[tokio::test]
async fn every_job_done_exactly_once_through_faults() {
    let _metrics = support::metrics_lock().await;
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let proxy = Proxy::start(
        g.s3_addr,
        Faults {
            fail_every: 3,
            reset_every: 5,
            delay: Duration::from_millis(5),
            ..Faults::default()
        },
    )
    .await;
    let bucket = Arc::new(S3Bucket::new(&g.settings_via(&proxy.endpoint)));
    let dir = tempfile::tempdir().unwrap();
    let (jobs, expected) = jobs(dir.path(), 24, 200_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(bucket, fast(), tx);
    for j in jobs {
        up.submit(j);
    }
    let done = collect(&mut rx, 24).await;
    let unique: BTreeSet<_> = done.iter().copied().collect();
    // 24 completions covering all 24 jobs: none reported twice (a repeat
    // would leave one missing here, or arrive in the check below).
    assert_eq!(unique, (0..24).collect(), "{done:?}");
    assert_eq!(up.pending(), 0);
    assert!(up.failing_since().is_none());
    // Faults were really injected.
    assert!(proxy.request_count() > 48, "{}", proxy.request_count());
    proxy.set_faults(Faults::default());
    assert_stored(&g, &expected);
    // Nothing further arrives.
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn uploads_resume_after_the_server_comes_back() {
    let _metrics = support::metrics_lock().await;
    let Some(mut g) = Garage::start_or_skip() else {
        return;
    };
    let bucket = Arc::new(S3Bucket::new(&g.settings()));
    let dir = tempfile::tempdir().unwrap();
    let (jobs, expected) = jobs(dir.path(), 6, 50_000);
    g.kill();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(bucket, fast(), tx);
    for j in jobs {
        up.submit(j);
    }
    // While the server is down nothing can complete; wait until the queue
    // has noticed.
    tokio::time::timeout(Duration::from_secs(60), async {
        while up.failing_since().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the queue notices the outage within a minute");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "a job completed while the server was down"
    );
    assert_eq!(up.pending(), 6);
    g.restart();
    let done: BTreeSet<_> = collect(&mut rx, 6).await.into_iter().collect();
    assert_eq!(done, (0..6).collect());
    assert!(up.failing_since().is_none());
    assert_stored(&g, &expected);
}

/// A bucket whose credentials can be fixed while the agent runs.
struct Switch {
    bad: S3Bucket,
    good: S3Bucket,
    fixed: AtomicBool,
}

#[async_trait]
impl Bucket for Switch {
    async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError> {
        if self.fixed.load(Ordering::SeqCst) {
            &self.good
        } else {
            &self.bad
        }
        .put(key, body, meta)
        .await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ShipError> {
        if self.fixed.load(Ordering::SeqCst) {
            &self.good
        } else {
            &self.bad
        }
        .head(key)
        .await
    }
    fn describe(&self) -> String {
        "switch".into()
    }
}

#[tokio::test]
async fn rejected_uploads_are_counted_and_never_dropped() {
    let _metrics = support::metrics_lock().await;
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let mut wrong = g.settings();
    wrong.secret_access_key = "0".repeat(64);
    let bucket = Arc::new(Switch {
        bad: S3Bucket::new(&wrong),
        good: S3Bucket::new(&g.settings()),
        fixed: AtomicBool::new(false),
    });
    let dir = tempfile::tempdir().unwrap();
    let (jobs, expected) = jobs(dir.path(), 2, 1000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(bucket.clone(), fast(), tx);
    let failures = || logship::ops::metrics::metrics().upload_failures.get();
    let before = failures();
    for j in jobs {
        up.submit(j);
    }
    // Several slow retries, each counted; nothing done, nothing dropped.
    // (The metrics lock keeps the binary's other uploads off the counter.)
    tokio::time::timeout(Duration::from_secs(60), async {
        while failures() < before + 6 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("six counted failures within a minute");
    assert!(rx.try_recv().is_err());
    assert_eq!(up.pending(), 2);
    assert!(up.failing_since().is_some());
    assert!(g.list().is_empty());

    bucket.fixed.store(true, Ordering::SeqCst);
    let done: BTreeSet<_> = collect(&mut rx, 2).await.into_iter().collect();
    assert_eq!(done, BTreeSet::from([0, 1]));
    assert!(up.failing_since().is_none());
    assert_stored(&g, &expected);
}

/// After a crash the core re-submits segments it had not marked uploaded:
/// one already in the bucket costs a HEAD, not a PUT.
#[tokio::test]
async fn resubmitted_segment_already_uploaded_is_not_put_again() {
    let _metrics = support::metrics_lock().await;
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut jobs, expected) = jobs(dir.path(), 2, 300_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(Arc::new(S3Bucket::new(&g.settings())), fast(), tx);
    up.submit(jobs[0].clone());
    up.submit(jobs[1].clone());
    collect(&mut rx, 2).await;

    // "Restart": a new queue, behind a recording proxy.
    let proxy = Proxy::start(g.s3_addr, Faults::default()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let up = Uploader::spawn(
        Arc::new(S3Bucket::new(&g.settings_via(&proxy.endpoint))),
        fast(),
        tx,
    );
    up.submit(jobs[0].clone());
    assert_eq!(collect(&mut rx, 1).await, vec![0]);
    let methods: Vec<_> = proxy.recorded().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, vec!["HEAD"]);

    // A stored object that does not match (here: metadata) is overwritten
    // under the same key.
    jobs[1].meta.lines += 1;
    up.submit(jobs[1].clone());
    assert_eq!(collect(&mut rx, 1).await, vec![1]);
    let methods: Vec<_> = proxy.recorded().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, vec!["HEAD", "HEAD", "PUT"]);
    assert_stored(&g, &expected);
    let m = g.get(&jobs[1].key).unwrap().metadata;
    assert_eq!(m["lines"], jobs[1].meta.lines.to_string());
}
