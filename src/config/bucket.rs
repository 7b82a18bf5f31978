//! `[bucket]`: where sealed segments go.

use std::path::PathBuf;

use serde::Deserialize;

/// Which implementation of [`crate::ship::Bucket`] to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketKind {
    /// Cloudflare R2: endpoint derived from `account_id`.
    R2,
    /// Any S3-compatible store at `endpoint`.
    S3,
    /// A local directory that receives the same keys and bytes.
    #[default]
    Dir,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BucketConfig {
    pub kind: BucketKind,
    /// `dir`: the directory (default `{data_dir}/bucket`).
    pub path: Option<PathBuf>,
    /// `r2`: the Cloudflare account id.
    pub account_id: Option<String>,
    /// `r2`/`s3`: the bucket name.
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Prepended to every key, with one `/`.
    pub prefix: String,
    /// Overrides the derived endpoint (path-style addressing).
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl BucketConfig {
    /// `prefix` normalized: no leading or trailing slashes; empty means none.
    pub fn key_prefix(&self) -> &str {
        self.prefix.trim_matches('/')
    }
}
