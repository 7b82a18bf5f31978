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
pub mod retention;
pub mod s3;
pub mod uploader;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;

use crate::config::{BucketKind, Config};

/// The user-metadata keys of an object (SPEC §3; `x-amz-meta-{key}` on S3,
/// `.meta/{key}.json` in a directory bucket). Readers use these too.
pub mod meta_key {
    /// First event timestamp in the object (epoch ms).
    pub const FIRST_TS: &str = "first-ts";
    /// Last event timestamp in the object (epoch ms).
    pub const LAST_TS: &str = "last-ts";
    /// Number of events (lines) in the object.
    pub const LINES: &str = "lines";
    pub const TIER: &str = "tier";
    pub const INSTANCE_ID: &str = "instance-id";
}

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
            (meta_key::FIRST_TS.to_string(), self.first_ts.to_string()),
            (meta_key::LAST_TS.to_string(), self.last_ts.to_string()),
            (meta_key::LINES.to_string(), self.lines.to_string()),
            (meta_key::TIER.to_string(), self.tier.clone()),
            (meta_key::INSTANCE_ID.to_string(), self.instance_id.clone()),
        ])
    }
}

/// What is known about a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub meta: BTreeMap<String, String>,
}

/// One object found by [`Bucket::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// One page of a listing: objects, and (for a delimited listing) the
/// "directories" one level below the prefix, each ending in `/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<Listed>,
    pub dirs: Vec<String>,
    /// Pass back to [`Bucket::list`] for the next page; `None` on the last.
    pub next: Option<String>,
}

/// How far a listing goes below its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Every key that starts with the prefix.
    All,
    /// Keys directly below the prefix; deeper ones are reported as `dirs`.
    OneLevel,
}

/// An object's bytes as they arrive (gzip, as stored).
pub type ObjectBody = std::pin::Pin<Box<dyn tokio::io::AsyncBufRead + Send>>;

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
    /// One page of the keys under `prefix`, in key order; `token` is the
    /// previous page's `next`.
    async fn list(
        &self,
        prefix: &str,
        depth: Depth,
        token: Option<String>,
    ) -> Result<ListPage, ShipError> {
        let _ = (prefix, depth, token);
        Err(ShipError::slowly(format!(
            "{} cannot list objects",
            self.describe()
        )))
    }
    /// Metadata and a stream of the stored bytes of `key`, or `None` if
    /// absent. One request: the metadata arrives with the response headers,
    /// so a caller that only needed it drops the body unread.
    async fn get(&self, key: &str) -> Result<Option<(ObjectInfo, ObjectBody)>, ShipError> {
        let _ = key;
        Err(ShipError::slowly(format!(
            "{} cannot read objects",
            self.describe()
        )))
    }
    /// Human-readable description for logs and `check` (no secrets).
    fn describe(&self) -> String;
}

/// Every key under `prefix` (all pages), in key order.
pub async fn list_all(
    bucket: &dyn Bucket,
    prefix: &str,
    depth: Depth,
) -> Result<ListPage, ShipError> {
    let mut all = ListPage::default();
    let mut token = None;
    loop {
        let page = bucket.list(prefix, depth, token).await?;
        all.objects.extend(page.objects);
        all.dirs.extend(page.dirs);
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

/// The bucket `[bucket]` describes. For `r2`/`s3`, also installs the
/// lifecycle rules it asks for: per tier with `lifecycle = true`, and one
/// per retention class with `[bucket.retention]` (setting it is the consent,
/// SPEC §13). A failure there is logged, not fatal, so a token without
/// admin rights still ships.
pub async fn from_config(cfg: &Config) -> anyhow::Result<Arc<dyn Bucket>> {
    let b = &cfg.bucket;
    if b.kind == BucketKind::Dir {
        return Ok(Arc::new(dir::DirBucket::new(cfg.dir_bucket_path())));
    }
    let settings = s3::S3Settings::from_config(b).context("[bucket] is incomplete")?;
    let bucket = s3::S3Bucket::new(&settings);
    let mut rules = Vec::new();
    if b.lifecycle {
        rules.extend(s3::LifecycleRule::for_tiers(
            b.key_prefix(),
            &b.retention_days,
        ));
    }
    if let Some(Ok(classes)) = b.retention_classes() {
        rules.extend(classes.lifecycle_rules(b.key_prefix()));
    }
    if !rules.is_empty() {
        match bucket.apply_lifecycle(&rules).await {
            Ok(()) => {
                tracing::info!(bucket = %bucket.describe(), rules = rules.len(), "bucket lifecycle rules applied")
            }
            Err(e) => tracing::error!(
                bucket = %bucket.describe(), error = %e,
                "could not apply bucket lifecycle rules (bucket.lifecycle and [bucket.retention] need a bucket-admin token); objects will not expire"
            ),
        }
    }
    Ok(Arc::new(bucket))
}
