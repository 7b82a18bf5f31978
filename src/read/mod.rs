//! The read side (SPEC §10): events back out of local segments and the
//! bucket, for `logship query`, `/api/query` and `/api/errors`.
//!
//! A query runs in three steps, one module each:
//! 1. [`plan`] lists what can hold the window — the day prefixes from the
//!    day of `since` (one earlier, for clock skew) through today, or the one
//!    `builds/{id}` key — and prunes objects by their `first-ts`/`last-ts`
//!    metadata; local segment files are found the same way under `data_dir`.
//! 2. [`fetch`] reads one source (object or local file), gunzipping as the
//!    bytes stream in, and keeps the events that pass the [`Filter`].
//! 3. [`merge`] orders the sources' events by `(ts, instanceId, seq)` and
//!    drops duplicates (an uploaded segment exists locally and in the bucket).
//!
//! ## Ordering with bounded memory
//!
//! A segment is in *write* order, which is not always `ts` order (files
//! interleave, applications stamp their own times, backlogs are read late),
//! so a plain k-way merge over the streams as stored would be wrong. Each
//! source is therefore filtered while it streams and only its *matching*
//! events are held and sorted; the k-way merge runs over those sorted
//! per-source runs. Sources are opened in order of their first `ts` (object
//! metadata; a cheap scan of the `ts` prefix for local files), and a source
//! is opened only when the merge reaches that `ts` — so what is held at any
//! moment is the matching events of the sources whose time spans overlap
//! the merge position, plus a bounded number fetched ahead. For one agent's
//! time-rotated segments that is one or two segments (each at most
//! `segments.max_bytes` of NDJSON, less after filtering), never the whole
//! result. Duplicates share their full ordering key, so they arrive
//! adjacent and are dropped by comparing with the previous event.

pub mod fetch;
pub mod filter;
pub mod follow;
pub mod merge;
pub mod plan;
pub mod retry;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use filter::{parse_time, Filter, FilterParams};
pub use merge::query;
pub use plan::Snapshot;

use crate::config::{BucketKind, Config};
use crate::ship::{dir::DirBucket, s3, Bucket, ShipError};

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("unknown parameter {0:?}; use tier, since, until, kind, lvl, src, instanceId, projectId, buildId, userId, reqId, grep, limit")]
    UnknownParam(String),
    #[error("unknown tier {0:?}; use system, build, deploy, action or lifecycle")]
    BadTier(String),
    #[error("unknown level {0:?}; use debug, info, warn or error")]
    BadLevel(String),
    #[error("cannot read time {0:?}; use RFC 3339 (2026-01-02T03:04:05Z), a date, epoch ms, or an age like \"2h\"")]
    BadTime(String),
    #[error("bad grep pattern: {0}")]
    BadGrep(String),
    #[error("limit {0:?} is not a non-negative integer")]
    BadLimit(String),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("[bucket] cannot be read: {0}")]
    Config(String),
    #[error("bucket: {0}")]
    Bucket(#[from] ShipError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a read task failed: {0}")]
    Task(String),
    /// The connection failed while an object's body was being read (and
    /// went on failing when the object was fetched again).
    #[error("bucket: reading {key}: {source}")]
    Transfer { key: String, source: std::io::Error },
}

impl QueryError {
    /// Whether the request itself was wrong (HTTP 400) rather than the
    /// reading failing (HTTP 502/500).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            QueryError::UnknownParam(_)
                | QueryError::BadTier(_)
                | QueryError::BadLevel(_)
                | QueryError::BadTime(_)
                | QueryError::BadGrep(_)
                | QueryError::BadLimit(_)
                | QueryError::Missing(_)
        )
    }
}

/// Counters of one query, for progress lines and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Objects found by listing (or addressed directly).
    pub listed: AtomicU64,
    /// Objects skipped by their metadata.
    pub pruned: AtomicU64,
    /// Objects and local files read.
    pub fetched: AtomicU64,
    /// Compressed bytes received from the bucket.
    pub bytes_read: AtomicU64,
    /// Bytes of NDJSON scanned (decompressed and local).
    pub bytes_scanned: AtomicU64,
    /// Bucket requests (list, head, get).
    pub requests: AtomicU64,
    /// Lines that were not events, or too long (skipped).
    pub bad_lines: AtomicU64,
    /// Events emitted.
    pub emitted: AtomicU64,
}

impl Stats {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Where a query reads from: the bucket, its key prefix, and the local
/// segments under `data_dir`.
#[derive(Clone)]
pub struct Reader {
    pub bucket: Arc<dyn Bucket>,
    /// `bucket.prefix`, trimmed of slashes.
    pub prefix: String,
    pub data_dir: PathBuf,
    /// Bucket requests in flight at once (heads and fetches).
    pub concurrency: usize,
    /// Objects may sit under `retain-{days}d/` classes (SPEC §13); a
    /// `buildId` query then also looks there (one listing more).
    pub retention_classes: bool,
}

/// Default bound on objects fetched at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl Reader {
    /// The reader of `cfg`'s bucket and data_dir. Builds the client only:
    /// unlike the agent, a reader never touches lifecycle rules.
    pub fn from_config(cfg: &Config) -> Result<Reader, QueryError> {
        let bucket: Arc<dyn Bucket> = match cfg.bucket.kind {
            BucketKind::Dir => Arc::new(DirBucket::new(cfg.dir_bucket_path())),
            _ => {
                let s = s3::S3Settings::from_config(&cfg.bucket)
                    .map_err(|e| QueryError::Config(format!("{e:#}")))?;
                retry::Retrying::wrap(Arc::new(s3::S3Bucket::new(&s)))
            }
        };
        Ok(Reader {
            bucket,
            prefix: cfg.bucket.key_prefix().to_string(),
            data_dir: cfg.agent.data_dir.clone(),
            concurrency: DEFAULT_CONCURRENCY,
            retention_classes: cfg.bucket.retention.is_some(),
        })
    }
}
