//! The upload queue: sealed, compressed segments go to the bucket, and their
//! completion is reported back so the segment can be marked uploaded.
//!
//! Invariants:
//! - A job is never dropped. Failures are retried with exponential backoff
//!   and jitter while the file waits on disk: without limit and quickly for
//!   [`Retry::Soon`], on a slow schedule (and logged as an error naming the
//!   reason) for [`Retry::Slowly`].
//! - At most `concurrency` requests are in flight. A job holds its permit
//!   only while it talks to the bucket, not while it waits to retry, so a
//!   few rejected objects cannot stall everything behind them.
//! - Idempotent and cheap after a crash: before a PUT, a HEAD checks whether
//!   the object is already there with the same size and metadata (the core
//!   re-submits segments whose completion it had not recorded); keys and
//!   bytes are deterministic, so otherwise the PUT is an identical overwrite
//!   and the bucket never holds two copies of an event.
//! - The backlog gauges (`logship_upload_backlog_segments`/`_bytes`) are
//!   written here and nowhere else: jobs submitted and not yet done, and
//!   their size as stored in the bucket (the compressed file).
//! - The bucket client can be replaced while jobs run ([`Uploader::replace`],
//!   for new credentials on reload): a request in flight finishes with the
//!   client it started with, every later attempt takes the current one.
//! - A failure that repeats with the same message is logged once per
//!   [`REPEAT_LOG_EVERY`], then summarized with its count: a rejected token
//!   retried by many jobs does not flood the log (the failures metric still
//!   counts each one).
//! - Memory does not grow with object size or `concurrency`: a job holds a
//!   path, and [`Bucket::put_file`] streams the file. Its length and digests
//!   come from the seal thread ([`Uploader::submit_sealed`]); a job without
//!   them ([`Uploader::submit`]) has them computed from the file, in chunks.
//! - A segment split into retention classes ([`Uploader::submit_group`]) is
//!   one job of several objects: it counts as one segment in the backlog,
//!   its ticket is reported done only when every object is stored, and its
//!   files are removed then. A crash in between re-submits the segment,
//!   whose objects are the same bytes under the same keys: those already
//!   stored are skipped by the HEAD check.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::digest::{Digest, ObjectFile};
use super::retention::Classes;
use super::{Bucket, ObjectMeta, Retry, ShipError};
use crate::config::BucketConfig;
use crate::ops::metrics::metrics;

/// Names one upload from dispatch to completion. The core issues a fresh
/// ticket each time it dispatches a sealed segment and maps it back to the
/// segment and the generation it sealed, so a completion that arrives after
/// the segment was reopened (a late build event) is recognised as stale.
/// Not a segment id: one segment may be uploaded under several tickets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadTicket(pub u64);

/// One compressed segment to upload.
#[derive(Clone, Debug)]
pub struct UploadJob {
    /// Echoed back on the `done` channel when the job is done.
    pub ticket: UploadTicket,
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
    /// `bucket.prefix`, trimmed of slashes.
    pub key_prefix: String,
    /// `[bucket.retention]`: when set, the seal thread splits segments into
    /// one object per class. Read at each seal, so a reload applies it to
    /// segments sealed from then on.
    pub retention: Option<Classes>,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig::from_bucket(&BucketConfig::default())
    }
}

impl UploaderConfig {
    pub fn from_bucket(b: &BucketConfig) -> UploaderConfig {
        UploaderConfig {
            concurrency: b.concurrency,
            initial_backoff: b.retry_initial.get(),
            max_backoff: b.retry_max.get(),
            slow_retry: b.retry_rejected.get(),
            key_prefix: b.key_prefix().to_string(),
            retention: b.retention_classes().and_then(Result::ok),
        }
    }
}

/// How often one repeating failure message is logged in full.
pub const REPEAT_LOG_EVERY: Duration = Duration::from_secs(60);
/// Distinct failure messages tracked for [`REPEAT_LOG_EVERY`]; beyond this
/// the oldest are forgotten (and simply logged again).
const REPEAT_LOG_CAP: usize = 64;

/// Submits jobs; the tickets of completed jobs arrive on the `done` channel
/// given to [`Uploader::spawn`].
#[derive(Clone)]
pub struct Uploader {
    tx: mpsc::UnboundedSender<Queued>,
    health: Arc<Health>,
    target: Arc<RwLock<Target>>,
}

/// The client and retry settings the next attempt uses; replaced whole.
#[derive(Clone)]
struct Target {
    bucket: Arc<dyn Bucket>,
    cfg: UploaderConfig,
}

/// A job with what the queue needs to account for it.
struct Queued {
    ticket: UploadTicket,
    /// The objects to store, each with the length and digests of its file
    /// as sealed, when the sealer gave them.
    parts: Vec<(UploadJob, Option<(u64, Digest)>)>,
    /// Size counted into the backlog gauge at submit, taken out when done.
    bytes: u64,
    /// Remove the parts' files when done (class objects; a single object's
    /// spool file is the pipeline's to remove).
    remove_files: bool,
}

/// Shared between the handle and the job tasks.
#[derive(Default)]
struct Health {
    /// Numbers jobs for `failing` (callers may submit a ticket twice).
    next_job: AtomicU64,
    /// First failure of each job that has failed and not yet succeeded.
    failing: Mutex<BTreeMap<u64, Instant>>,
    /// Jobs submitted and not done.
    pending: AtomicU64,
    /// Set when the bucket refused a HEAD (a PUT-only token): from then on
    /// jobs go straight to the PUT, which is idempotent, just costlier.
    head_refused: AtomicBool,
    /// Rate limit of repeated failure logs.
    repeats: Mutex<RepeatLog>,
}

impl Uploader {
    /// Start the queue on the current tokio runtime.
    pub fn spawn(
        bucket: Arc<dyn Bucket>,
        cfg: UploaderConfig,
        done: mpsc::UnboundedSender<UploadTicket>,
    ) -> Uploader {
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let health = Arc::new(Health::default());
        let target = Arc::new(RwLock::new(Target { bucket, cfg }));
        let (h, t) = (health.clone(), target.clone());
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                let ctx = JobCtx {
                    target: t.clone(),
                    permits: permits.clone(),
                    health: h.clone(),
                    job: h.next_job.fetch_add(1, Ordering::Relaxed),
                };
                let done = done.clone();
                tokio::spawn(async move {
                    for (job, sealed) in &q.parts {
                        ctx.upload_until_done(job, *sealed).await;
                    }
                    if q.remove_files {
                        for (job, _) in &q.parts {
                            let _ = tokio::fs::remove_file(&job.gz_path).await;
                        }
                    }
                    ctx.health.pending.fetch_sub(1, Ordering::Relaxed);
                    metrics().upload_backlog_segments.dec();
                    metrics().upload_backlog_bytes.dec_by(q.bytes as i64);
                    // The receiver is gone only when the agent is exiting.
                    let _ = done.send(q.ticket);
                });
            }
        });
        Uploader { tx, health, target }
    }

    /// Use `bucket` (and `cfg`'s retry timings) from the next attempt on:
    /// new credentials or endpoint after a reload. Jobs are not restarted; a
    /// job waiting to retry a rejection is woken no sooner than its wait
    /// ends. `cfg.concurrency` is fixed at spawn (a change needs a restart).
    pub fn replace(&self, bucket: Arc<dyn Bucket>, cfg: UploaderConfig) {
        let mut t = self.target.write().unwrap_or_else(|p| p.into_inner());
        if t.cfg.retention != cfg.retention {
            let describe = |c: &Option<Classes>| {
                c.map_or("none (one object per segment)".to_string(), |c| {
                    c.describe()
                })
            };
            tracing::info!(
                from = %describe(&t.cfg.retention),
                to = %describe(&cfg.retention),
                "bucket.retention changed; segments sealed from now on use the new classes, objects already written keep theirs"
            );
        }
        *t = Target { bucket, cfg };
    }

    /// The key prefix and retention classes to seal the next segment with,
    /// when `[bucket.retention]` is set.
    pub fn retention(&self) -> Option<(String, Classes)> {
        let t = self.target.read().unwrap_or_else(|p| p.into_inner());
        t.cfg.retention.map(|c| (t.cfg.key_prefix.clone(), c))
    }

    /// Queue a job (never blocks; the queue is bounded by segments on disk).
    /// The file's digests are computed from it at upload.
    pub fn submit(&self, job: UploadJob) {
        let bytes = std::fs::metadata(&job.gz_path).map_or(0, |m| m.len());
        self.enqueue(job, bytes, None);
    }

    /// Queue a job whose file is `len` bytes with `digest`, as the seal
    /// thread wrote it.
    pub fn submit_sealed(&self, job: UploadJob, len: u64, digest: Digest) {
        self.enqueue(job, len, Some((len, digest)));
    }

    /// Queue the class objects of one segment (each `(job, len, digest)`
    /// as the seal thread wrote it): one backlog segment, one completion
    /// for `ticket` once all are stored.
    pub fn submit_group(&self, ticket: UploadTicket, parts: Vec<(UploadJob, u64, Digest)>) {
        let bytes = parts.iter().map(|(_, len, _)| len).sum();
        let parts = parts
            .into_iter()
            .map(|(job, len, digest)| (job, Some((len, digest))))
            .collect();
        self.push(Queued {
            ticket,
            parts,
            bytes,
            remove_files: true,
        });
    }

    fn enqueue(&self, job: UploadJob, bytes: u64, sealed: Option<(u64, Digest)>) {
        self.push(Queued {
            ticket: job.ticket,
            parts: vec![(job, sealed)],
            bytes,
            remove_files: false,
        });
    }

    fn push(&self, q: Queued) {
        let bytes = q.bytes;
        metrics().upload_backlog_segments.inc();
        metrics().upload_backlog_bytes.inc_by(bytes as i64);
        self.health.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(q).is_err() {
            // Only after the queue task stopped (runtime shutdown): the job
            // stays on disk and is re-submitted at the next start.
            self.health.pending.fetch_sub(1, Ordering::Relaxed);
            metrics().upload_backlog_segments.dec();
            metrics().upload_backlog_bytes.dec_by(bytes as i64);
        }
    }

    /// Since when the oldest still-failing job has been failing; `None` when
    /// no job is currently failing. `/readyz` compares this with
    /// `bucket.not_ready_after`.
    pub fn failing_since(&self) -> Option<Instant> {
        let failing = self
            .health
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        failing.values().min().copied()
    }

    /// Jobs submitted and not yet done.
    pub fn pending(&self) -> u64 {
        self.health.pending.load(Ordering::Relaxed)
    }
}

/// What one job's task needs.
struct JobCtx {
    target: Arc<RwLock<Target>>,
    permits: Arc<Semaphore>,
    health: Arc<Health>,
    /// This job's number in `Health::failing`.
    job: u64,
}

impl JobCtx {
    /// The client and settings for the next attempt (the lock is never held
    /// across an await).
    fn target(&self) -> Target {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn upload_until_done(&self, job: &UploadJob, sealed: Option<(u64, Digest)>) {
        let mut backoff = self.target().cfg.initial_backoff;
        loop {
            let result = {
                // Closed only if the semaphore is dropped, which it is not
                // while this task holds an Arc to it.
                let _permit = self.permits.acquire().await;
                let target = self.target();
                self.attempt(&target.bucket, job, sealed).await
            };
            let e = match result {
                Ok(()) => {
                    self.set_failing(false);
                    return;
                }
                Err(e) => e,
            };
            metrics().upload_failures.inc();
            self.set_failing(true);
            let cfg = self.target().cfg;
            // The same failure of many jobs differs only by key.
            let text = e.message.replace(&job.key, "{key}");
            let repeat = self
                .health
                .repeats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .note(&text, Instant::now());
            let wait = match e.retry {
                Retry::Soon => {
                    let w = jitter(backoff);
                    if let Some(similar) = repeat {
                        tracing::warn!(key = %job.key, error = %e, similar, "upload failed; retrying in {w:?}");
                    }
                    backoff = (backoff * 2).min(cfg.max_backoff);
                    w
                }
                Retry::Slowly => {
                    let w = jitter(cfg.slow_retry);
                    if let Some(similar) = repeat {
                        tracing::error!(key = %job.key, error = %e, similar, "upload REJECTED by the bucket; the segment stays on disk and is retried in {w:?}");
                    }
                    w
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Find the file, skip if already stored, else PUT.
    async fn attempt(
        &self,
        bucket: &Arc<dyn Bucket>,
        job: &UploadJob,
        sealed: Option<(u64, Digest)>,
    ) -> Result<(), ShipError> {
        let started = Instant::now();
        // Every attempt streams the file afresh: after a BadDigest (bytes
        // damaged in transit) the retry sends them again.
        let obj = locate(job, sealed).await?;
        // The HEAD costs one small request; it saves a full PUT when a crash
        // re-submits an uploaded segment, or when a PUT that "timed out" had
        // in fact landed. A failed HEAD just means we PUT anyway.
        let mut head_refused = false;
        if !self.health.head_refused.load(Ordering::Relaxed) {
            match bucket.head(&job.key).await {
                Ok(Some(info)) if info.size == obj.len && info.meta == job.meta.to_map() => {
                    tracing::info!(key = %job.key, "already in the bucket with the same size and metadata; not uploading again");
                    metrics().uploads.inc();
                    return Ok(());
                }
                Err(e) => head_refused = e.retry == Retry::Slowly,
                Ok(_) => {}
            }
        }
        let len = obj.len;
        bucket.put_file(&job.key, &obj, &job.meta).await?;
        // HEAD refused but PUT accepted: a PUT-only token, not bad credentials.
        if head_refused && !self.health.head_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(key = %job.key, "the bucket refuses HEAD but accepts PUT; segments re-submitted after a restart will be uploaded again (same key, same bytes)");
        }
        let took = started.elapsed();
        metrics().uploads.inc();
        metrics().upload_duration.observe(took.as_secs_f64());
        tracing::debug!(key = %job.key, bytes = len, "uploaded in {took:?}");
        Ok(())
    }

    fn set_failing(&self, failing: bool) {
        let mut map = self
            .health
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if failing {
            map.entry(self.job).or_insert_with(Instant::now);
        } else {
            map.remove(&self.job);
        }
    }
}

/// Which failure messages were logged when, so a repeating one is logged once
/// per [`REPEAT_LOG_EVERY`] with the count of those held back in between.
#[derive(Default)]
struct RepeatLog {
    /// message -> (when it was last logged, occurrences not logged since).
    seen: HashMap<String, (Instant, u64)>,
}

impl RepeatLog {
    /// `Some(n)` when `message` should be logged now (`n` similar failures
    /// were held back since it was last logged), `None` to stay quiet.
    fn note(&mut self, message: &str, now: Instant) -> Option<u64> {
        if let Some((logged, held)) = self.seen.get_mut(message) {
            if now.duration_since(*logged) < REPEAT_LOG_EVERY {
                *held += 1;
                return None;
            }
            let similar = *held;
            *logged = now;
            *held = 0;
            return Some(similar);
        }
        if self.seen.len() >= REPEAT_LOG_CAP {
            // Forget the one logged longest ago: bounded whatever the errors.
            if let Some(oldest) = self
                .seen
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
            {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(message.to_string(), (now, 0));
        Some(0)
    }
}

/// The job's file with its length and digests: the sealer's, after checking
/// the file still has that length, else computed from the file.
async fn locate(job: &UploadJob, sealed: Option<(u64, Digest)>) -> Result<ObjectFile, ShipError> {
    let path = job.gz_path.clone();
    let unreadable = |e: std::io::Error| {
        let msg = format!("reading {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::NotFound => ShipError::slowly(
                msg + " (the sealed segment is gone; was the data dir cleaned by hand?)",
            ),
            _ => ShipError::soon(msg),
        }
    };
    let (len, digest) = match sealed {
        Some((len, digest)) => {
            let on_disk = tokio::fs::metadata(&path).await.map_err(unreadable)?.len();
            if on_disk != len {
                return Err(ShipError::slowly(format!(
                    "{} is {on_disk} bytes but was sealed as {len}: it changed on disk; it is compressed again at the next start",
                    path.display()
                )));
            }
            (len, digest)
        }
        None => {
            let p = path.clone();
            tokio::task::spawn_blocking(move || Digest::of_file(&p))
                .await
                .map_err(|e| ShipError::soon(format!("digest task failed: {e}")))?
                .map_err(unreadable)?
        }
    };
    Ok(ObjectFile { path, len, digest })
}

/// Jitter between half and all of `d`, so many agents do not retry in step.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process and per instance: good enough to
    // spread retries, without a dependency on a random number crate.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(d.as_nanos() as u64);
    let frac = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
    d.mul_f64(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::dir::DirBucket;
    use crate::ship::ObjectInfo;

    /// A directory bucket behind a token that may PUT but not HEAD.
    struct PutOnly {
        inner: DirBucket,
        heads: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Bucket for PutOnly {
        async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError> {
            self.inner.put(key, body, meta).await
        }
        async fn head(&self, _key: &str) -> Result<Option<ObjectInfo>, ShipError> {
            self.heads.fetch_add(1, Ordering::SeqCst);
            Err(ShipError::slowly("HTTP 403 AccessDenied"))
        }
        fn describe(&self) -> String {
            "put-only".into()
        }
    }

    #[tokio::test]
    async fn a_refused_head_is_not_retried_once_put_works() {
        let d = tempfile::tempdir().unwrap();
        let bucket = Arc::new(PutOnly {
            inner: DirBucket::new(d.path().join("bucket")),
            heads: AtomicU64::new(0),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let up = Uploader::spawn(bucket.clone(), UploaderConfig::default(), tx);
        for i in 0..3 {
            let gz_path = d.path().join(format!("{i}.gz"));
            std::fs::write(&gz_path, b"x").unwrap();
            up.submit(UploadJob {
                ticket: UploadTicket(i),
                key: format!("system/{i}.ndjson.gz"),
                gz_path,
                meta: ObjectMeta::default(),
            });
            assert_eq!(rx.recv().await, Some(UploadTicket(i)));
        }
        assert_eq!(bucket.heads.load(Ordering::SeqCst), 1);
        assert!(d.path().join("bucket/system/2.ndjson.gz").exists());
    }

    #[test]
    fn a_repeating_failure_is_logged_once_per_period_with_its_count() {
        let mut log = RepeatLog::default();
        let t0 = Instant::now();
        assert_eq!(log.note("HTTP 403 on {key}", t0), Some(0));
        for i in 1..=5 {
            assert_eq!(
                log.note("HTTP 403 on {key}", t0 + Duration::from_secs(i)),
                None
            );
        }
        // Another message is not held back by the first.
        assert_eq!(log.note("timed out", t0 + Duration::from_secs(6)), Some(0));
        let later = t0 + REPEAT_LOG_EVERY + Duration::from_secs(1);
        assert_eq!(log.note("HTTP 403 on {key}", later), Some(5));
        assert_eq!(log.note("HTTP 403 on {key}", later), None);
    }

    #[test]
    fn the_repeat_log_stays_bounded() {
        let mut log = RepeatLog::default();
        let t0 = Instant::now();
        for i in 0..(REPEAT_LOG_CAP as u64 * 3) {
            assert_eq!(
                log.note(&format!("error {i}"), t0 + Duration::from_millis(i)),
                Some(0)
            );
        }
        assert_eq!(log.seen.len(), REPEAT_LOG_CAP);
        // The newest are the ones kept.
        assert!(log
            .seen
            .contains_key(&format!("error {}", REPEAT_LOG_CAP as u64 * 3 - 1)));
    }

    #[tokio::test]
    async fn a_replaced_bucket_takes_the_next_attempt() {
        let d = tempfile::tempdir().unwrap();
        let refusing = Arc::new(PutOnly {
            inner: DirBucket::new(d.path().join("old")),
            heads: AtomicU64::new(0),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cfg = UploaderConfig {
            slow_retry: Duration::from_millis(20),
            ..UploaderConfig::default()
        };
        let up = Uploader::spawn(Arc::new(Refusing), cfg.clone(), tx);
        let gz_path = d.path().join("0.gz");
        std::fs::write(&gz_path, b"x").unwrap();
        up.submit(UploadJob {
            ticket: UploadTicket(7),
            key: "system/7.ndjson.gz".into(),
            gz_path,
            meta: ObjectMeta::default(),
        });
        // Rejected until the client is replaced; then done with the new one.
        while up.failing_since().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(rx.try_recv().is_err());
        up.replace(refusing.clone(), cfg);
        assert_eq!(rx.recv().await, Some(UploadTicket(7)));
        assert!(d.path().join("old/system/7.ndjson.gz").exists());
        assert_eq!(up.failing_since(), None);
    }

    /// A bucket whose every request is rejected (revoked credentials).
    struct Refusing;

    #[async_trait::async_trait]
    impl Bucket for Refusing {
        async fn put(&self, _: &str, _: Vec<u8>, _: &ObjectMeta) -> Result<(), ShipError> {
            Err(ShipError::slowly("HTTP 403 InvalidAccessKeyId"))
        }
        async fn head(&self, _key: &str) -> Result<Option<ObjectInfo>, ShipError> {
            Err(ShipError::slowly("HTTP 403 InvalidAccessKeyId"))
        }
        fn describe(&self) -> String {
            "refusing".into()
        }
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(10));
            assert!(
                j >= Duration::from_secs(5) && j <= Duration::from_secs(10),
                "{j:?}"
            );
        }
    }
}
