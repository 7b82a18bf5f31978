//! Where sealed segments go: the [`Bucket`] trait and its implementations.
//!
//! A bucket stores whole objects under deterministic keys (SPEC §3). Puts are
//! idempotent: the same key always receives the same bytes, so a retry or a
//! re-upload after a crash is harmless.
//!
//! Implementations: [`dir`] (a local directory, the default) and [`s3`] (R2
//! and other S3-compatible stores); [`from_config`] picks one. [`uploader`]
//! is the queue in front of either, and the one place that retries.

pub mod digest;
pub mod dir;
pub mod s3;
pub mod uploader;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;

use crate::config::{BucketKind, Config};

/// Metadata stored with each object (`x-amz-meta-*` on S3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub first_ts: i64,
    pub last_ts: i64,
    pub lines: u64,
    pub tier: String,
    pub instance_id: String,
}

impl ObjectMeta {
    /// The metadata as the user-metadata map (keys without `x-amz-meta-`).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("first-ts".to_string(), self.first_ts.to_string()),
            ("last-ts".to_string(), self.last_ts.to_string()),
            ("lines".to_string(), self.lines.to_string()),
            ("tier".to_string(), self.tier.clone()),
            ("instance-id".to_string(), self.instance_id.clone()),
        ])
    }
}

/// What is known about a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub meta: BTreeMap<String, String>,
}

/// Whether a failed operation may succeed if tried again soon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Network trouble, 5xx, 429, timeouts: retry with backoff, forever.
    Soon,
    /// Rejected (403, 400 BadDigest, ...): needs a person; retry slowly.
    Slowly,
}

/// A failed bucket operation.
#[derive(Debug)]
pub struct ShipError {
    pub retry: Retry,
    pub message: String,
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ShipError {}

impl ShipError {
    pub fn soon(message: impl Into<String>) -> ShipError {
        ShipError {
            retry: Retry::Soon,
            message: message.into(),
        }
    }
    pub fn slowly(message: impl Into<String>) -> ShipError {
        ShipError {
            retry: Retry::Slowly,
            message: message.into(),
        }
    }
}

/// An object store that receives sealed, compressed segments.
#[async_trait]
pub trait Bucket: Send + Sync + 'static {
    /// Store `body` (gzip bytes) under `key`, replacing any object there.
    async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError>;
    /// Store the sealed file `obj` under `key`. The upload queue calls this;
    /// implementations stream from the file so memory does not grow with
    /// object size or uploads in flight. The default reads it whole.
    async fn put_file(
        &self,
        key: &str,
        obj: &digest::ObjectFile,
        meta: &ObjectMeta,
    ) -> Result<(), ShipError> {
        let body = tokio::fs::read(&obj.path)
            .await
            .map_err(|e| ShipError::soon(format!("reading {}: {e}", obj.path.display())))?;
        self.put(key, body, meta).await
    }
    /// Size and metadata of `key`, or `None` if absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ShipError>;
    /// Human-readable description for logs and `check` (no secrets).
    fn describe(&self) -> String;
}

/// The bucket `[bucket]` describes. For `r2`/`s3` with `lifecycle = true`,
/// also installs the retention rules; a failure there is logged, not fatal,
/// so a token without admin rights still ships.
pub async fn from_config(cfg: &Config) -> anyhow::Result<Arc<dyn Bucket>> {
    let b = &cfg.bucket;
    if b.kind == BucketKind::Dir {
        return Ok(Arc::new(dir::DirBucket::new(cfg.dir_bucket_path())));
    }
    let settings = s3::S3Settings::from_config(b).context("[bucket] is incomplete")?;
    let bucket = s3::S3Bucket::new(&settings);
    if b.lifecycle {
        let rules = s3::LifecycleRule::for_tiers(b.key_prefix(), &b.retention_days);
        match bucket.apply_lifecycle(&rules).await {
            Ok(()) => tracing::info!(bucket = %bucket.describe(), "bucket lifecycle rules applied"),
            Err(e) => tracing::error!(
                bucket = %bucket.describe(), error = %e,
                "could not apply bucket lifecycle rules (bucket.lifecycle = true needs a bucket-admin token); objects will not expire"
            ),
        }
    }
    Ok(Arc::new(bucket))
}
