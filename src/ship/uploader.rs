//! The upload queue: sealed, compressed segments go to the bucket, and their
//! completion is reported back so the segment can be marked uploaded.
//!
//! A job is never dropped: failures are retried with exponential backoff and
//! jitter while the file waits on disk (fast for [`Retry::Soon`], on a slow
//! schedule for [`Retry::Slowly`]). Concurrency is bounded by a semaphore.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::{Bucket, ObjectMeta, Retry};
use crate::ops::metrics::metrics;

/// One compressed segment to upload.
#[derive(Clone, Debug)]
pub struct UploadJob {
    /// The segment's id in the agent's state; echoed back on completion.
    pub segment: u64,
    pub key: String,
    /// The gzip file to upload (deterministic bytes).
    pub gz_path: PathBuf,
    pub meta: ObjectMeta,
}

#[derive(Clone, Debug)]
pub struct UploaderConfig {
    pub concurrency: usize,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub slow_retry: Duration,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig {
            concurrency: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            slow_retry: Duration::from_secs(300),
        }
    }
}

/// Submits jobs; completed segment ids arrive on the `done` channel given to
/// [`Uploader::spawn`].
#[derive(Clone)]
pub struct Uploader {
    tx: mpsc::UnboundedSender<UploadJob>,
}

impl Uploader {
    /// Start the queue on the current tokio runtime.
    pub fn spawn(
        bucket: Arc<dyn Bucket>,
        cfg: UploaderConfig,
        done: mpsc::UnboundedSender<u64>,
    ) -> Uploader {
        let (tx, mut rx) = mpsc::unbounded_channel::<UploadJob>();
        let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let bucket = bucket.clone();
                let done = done.clone();
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    upload_until_done(&*bucket, &job, &cfg).await;
                    drop(permit);
                    // The receiver is gone only when the agent is exiting.
                    let _ = done.send(job.segment);
                });
            }
        });
        Uploader { tx }
    }

    /// Queue a job (never blocks; the queue is bounded by segments on disk).
    pub fn submit(&self, job: UploadJob) {
        // Fails only once the queue task has stopped (shutdown).
        let _ = self.tx.send(job);
    }
}

async fn upload_until_done(bucket: &dyn Bucket, job: &UploadJob, cfg: &UploaderConfig) {
    let mut backoff = cfg.initial_backoff;
    loop {
        let started = Instant::now();
        let result = match tokio::fs::read(&job.gz_path).await {
            Ok(body) => bucket.put(&job.key, body, &job.meta).await,
            Err(e) => Err(super::ShipError::soon(format!(
                "reading {}: {e}",
                job.gz_path.display()
            ))),
        };
        match result {
            Ok(()) => {
                metrics().uploads.inc();
                metrics()
                    .upload_duration
                    .observe(started.elapsed().as_secs_f64());
                return;
            }
            Err(e) => {
                metrics().upload_failures.inc();
                let wait = match e.retry {
                    Retry::Soon => {
                        tracing::warn!(key = %job.key, error = %e, "upload failed; retrying in {backoff:?}");
                        let w = jitter(backoff);
                        backoff = (backoff * 2).min(cfg.max_backoff);
                        w
                    }
                    Retry::Slowly => {
                        tracing::error!(key = %job.key, error = %e, "upload rejected; retrying in {:?} — check bucket credentials and permissions", cfg.slow_retry);
                        cfg.slow_retry
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Full jitter between half and all of `d`, so many agents do not retry in step.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let frac = 0.5 + (nanos % 1000) as f64 / 2000.0;
    d.mul_f64(frac)
}
