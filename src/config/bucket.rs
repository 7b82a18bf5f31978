//! `[bucket]`: where sealed segments go, how hard to try, how long they stay.
//!
//! The keys are plain values (not `Spanned`) so the rest of the agent reads
//! them directly; [`BucketConfig::validate`] finds positions for its errors by
//! locating the key inside the `[bucket]` table of the original text.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, HumanDuration, SourceText};
use crate::event::Tier;
use crate::ship::retention::{Classes, RetentionError};

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

#[derive(Clone, Debug, PartialEq, Deserialize)]
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
    /// Signing region; default `auto` (what R2 expects).
    pub region: Option<String>,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Limit on establishing a TCP/TLS connection.
    pub connect_timeout: HumanDuration,
    /// Limit on one whole request (sending the body included).
    pub operation_timeout: HumanDuration,
    /// First wait after a transient failure; doubles up to `retry_max`.
    pub retry_initial: HumanDuration,
    pub retry_max: HumanDuration,
    /// Wait after a rejection (403, 400 BadDigest, ...): these need a person,
    /// so hammering the bucket helps nobody, but the segment is never dropped.
    pub retry_rejected: HumanDuration,
    /// `/readyz` reports not ready once uploads have failed this long.
    pub not_ready_after: HumanDuration,
    /// Install lifecycle (expiration) rules for `retention_days` in the
    /// bucket at startup. Opt-in: it needs a bucket-admin token.
    pub lifecycle: bool,
    /// Days objects of each tier stay in the bucket (0 = forever).
    pub retention_days: RetentionDays,
    /// `[bucket.retention]`: days per level (SPEC §13). When set, segments
    /// are split into one object per retention class.
    pub retention: Option<RetentionLevels>,
}

impl Default for BucketConfig {
    fn default() -> Self {
        BucketConfig {
            kind: BucketKind::Dir,
            path: None,
            account_id: None,
            bucket: None,
            access_key_id: None,
            secret_access_key: None,
            prefix: String::new(),
            endpoint: None,
            region: None,
            concurrency: 4,
            connect_timeout: HumanDuration::secs(5),
            operation_timeout: HumanDuration::secs(120),
            retry_initial: HumanDuration::millis(200),
            retry_max: HumanDuration::secs(30),
            retry_rejected: HumanDuration::secs(300),
            not_ready_after: HumanDuration::secs(900),
            lifecycle: false,
            retention_days: RetentionDays::default(),
            retention: None,
        }
    }
}

/// `[bucket.retention]` as written: days per level. Checked by building
/// [`Classes`] from it ([`BucketConfig::retention_classes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionLevels {
    pub debug: Option<u32>,
    pub info: Option<u32>,
    pub warn: Option<u32>,
    pub error: Option<u32>,
}

/// `[bucket.retention_days]`: per-tier object lifetime in days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionDays {
    pub system: u32,
    pub build: u32,
    pub deploy: u32,
    pub action: u32,
    pub lifecycle: u32,
}

impl Default for RetentionDays {
    fn default() -> Self {
        RetentionDays {
            system: 30,
            build: 30,
            deploy: 30,
            action: 30,
            lifecycle: 30,
        }
    }
}

impl RetentionDays {
    pub fn get(&self, tier: Tier) -> u32 {
        match tier {
            Tier::System => self.system,
            Tier::Build => self.build,
            Tier::Deploy => self.deploy,
            Tier::Action => self.action,
            Tier::Lifecycle => self.lifecycle,
        }
    }
}

impl BucketConfig {
    /// `prefix` normalized: no leading or trailing slashes; empty means none.
    pub fn key_prefix(&self) -> &str {
        self.prefix.trim_matches('/')
    }

    /// The retention classes, when `[bucket.retention]` is set and valid.
    pub fn retention_classes(&self) -> Option<Result<Classes, RetentionError>> {
        self.retention
            .map(|r| Classes::new([r.debug, r.info, r.warn, r.error]))
    }

    /// The S3 endpoint: `endpoint` if set, else derived for R2.
    pub fn endpoint_url(&self) -> Option<String> {
        let explicit = self.endpoint.as_deref().filter(|e| !e.is_empty());
        match (explicit, self.kind) {
            (Some(e), _) => Some(e.trim_end_matches('/').to_string()),
            (None, BucketKind::R2) => self
                .account_id
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| format!("https://{a}.r2.cloudflarestorage.com")),
            (None, _) => None,
        }
    }

    /// Checks for `r2`/`s3`: required keys present, values in range.
    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if let Some(Err(e)) = self.retention_classes() {
            let key = match &e {
                RetentionError::Missing(_) => "",
                RetentionError::Range(level, _) => level,
            };
            let span = locate_key(&src.text, "[bucket.retention]", key);
            errors.push(src.error_at(span, e.to_string()));
        }
        let at = |key: &str| locate_key(&src.text, "[bucket]", key);
        let mut err = |key: &str, msg: String| errors.push(src.error_at(at(key), msg));

        if self.concurrency == 0 || self.concurrency > 64 {
            err(
                "concurrency",
                "bucket.concurrency must be between 1 and 64".into(),
            );
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("operation_timeout", self.operation_timeout),
            ("retry_initial", self.retry_initial),
            ("retry_max", self.retry_max),
            ("retry_rejected", self.retry_rejected),
        ] {
            if d.get().is_zero() {
                err(key, format!("bucket.{key} must be longer than 0s"));
            }
        }
        if self.retry_max < self.retry_initial {
            err(
                "retry_max",
                format!(
                    "bucket.retry_max ({}) is shorter than bucket.retry_initial ({})",
                    self.retry_max, self.retry_initial
                ),
            );
        }
        if self.kind == BucketKind::Dir {
            return errors;
        }
        let kind = if self.kind == BucketKind::R2 {
            "r2"
        } else {
            "s3"
        };
        let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if missing(&self.bucket) {
            err(
                "kind",
                format!("bucket.kind = \"{kind}\" needs `bucket` (the bucket name)"),
            );
        }
        for key in ["access_key_id", "secret_access_key"] {
            let v = if key == "access_key_id" {
                &self.access_key_id
            } else {
                &self.secret_access_key
            };
            if missing(v) {
                err(
                    "kind",
                    format!("bucket.kind = \"{kind}\" needs `{key}` (e.g. \"${{R2_WRITE_ACCESS_KEY_ID}}\" style from the environment)"),
                );
            }
        }
        match self.kind {
            BucketKind::R2 if missing(&self.account_id) && missing(&self.endpoint) => err(
                "kind",
                "bucket.kind = \"r2\" needs `account_id` (or an explicit `endpoint`)".into(),
            ),
            BucketKind::S3 if missing(&self.endpoint) => err(
                "kind",
                "bucket.kind = \"s3\" needs `endpoint`, e.g. \"https://s3.eu-west-1.amazonaws.com\"".into(),
            ),
            _ => {}
        }
        if let Some(a) = self.account_id.as_deref().filter(|a| !a.is_empty()) {
            if !a.chars().all(|c| c.is_ascii_alphanumeric()) {
                err("account_id", format!("bucket.account_id {a:?} must be letters and digits only (the Cloudflare account id)"));
            }
        }
        if let Some(e) = self.endpoint.as_deref().filter(|e| !e.is_empty()) {
            if !(e.starts_with("https://") || e.starts_with("http://")) {
                err("endpoint", format!("bucket.endpoint {e:?} must start with https:// (or http:// for a local test server)"));
            }
        }
        errors
    }
}

/// Byte span of `key`'s value inside the table `table` (e.g. `[bucket]`) of
/// the original text, falling back to the table header; `None` when neither
/// is found (e.g. an inline table). Good enough for pointing a person at a
/// line. An empty `key` finds the header.
fn locate_key(text: &str, table: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    let mut header = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('[') {
            let in_bucket = trimmed.starts_with(table);
            if header.is_some() && !in_bucket {
                break;
            }
            if in_bucket {
                header = Some(offset + indent..offset + line.trim_end().len());
            }
        } else if header.is_some() && !key.is_empty() {
            if let Some(rest) = trimmed.strip_prefix(key) {
                if let Some(eq) = rest.trim_start().strip_prefix('=') {
                    let value = offset + line.len() - eq.trim_start().len();
                    return Some(value..value + eq.trim().len());
                }
            }
        }
        offset += line.len();
    }
    header
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    fn errors(text: &str) -> Vec<String> {
        match load_str(Path::new("agent.toml"), text.to_string(), &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let l = load_str(Path::new("a.toml"), String::new(), &|_| None).unwrap();
        let b = &l.config.bucket;
        assert_eq!(b.concurrency, 4);
        assert_eq!(b.retention_days.system, 30);
        assert!(!b.lifecycle);
        assert!(b.validate(&l.source).is_empty());
    }

    #[test]
    fn r2_endpoint_is_derived() {
        let b = super::BucketConfig {
            kind: super::BucketKind::R2,
            account_id: Some("abc123".into()),
            ..Default::default()
        };
        assert_eq!(
            b.endpoint_url().as_deref(),
            Some("https://abc123.r2.cloudflarestorage.com")
        );
    }

    #[test]
    fn missing_keys_point_at_kind() {
        let text = "[agent]\n\n[bucket]\nkind = \"s3\"\nbucket = \"logs\"\n";
        let l = crate::config::SourceText::new(Path::new("agent.toml"), text.into());
        let cfg: crate::config::Config = toml::from_str(text).unwrap();
        let e = cfg.bucket.validate(&l);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().all(|e| (e.line, e.col) == (4, 8)), "{e:?}");
        assert!(e.iter().any(|e| e.message.contains("needs `endpoint`")));
    }

    #[test]
    fn bad_values_point_at_their_line() {
        let text =
            "[bucket]\nconcurrency = 0\nendpoint = \"s3.local\"\n[metrics]\nconcurrency = 1\n";
        let l = crate::config::SourceText::new(Path::new("agent.toml"), text.into());
        let cfg = crate::config::BucketConfig {
            concurrency: 0,
            kind: super::BucketKind::S3,
            endpoint: Some("s3.local".into()),
            bucket: Some("b".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            ..Default::default()
        };
        let e = cfg.validate(&l);
        let pos: Vec<_> = e.iter().map(|e| (e.line, e.col)).collect();
        assert_eq!(pos, vec![(2, 15), (3, 12)], "{e:?}");
    }

    #[test]
    fn retention_by_level_is_validated_at_its_position() {
        let ok = "[bucket.retention]\ndebug = 1\ninfo = 7\nwarn = 14\nerror = 30\n";
        assert!(errors(ok).is_empty());
        let e = errors("[bucket]\nprefix = \"p\"\n[bucket.retention]\ndebug = 1\ninfo = 0\nwarn = 1\nerror = 1\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("agent.toml:5:8: bucket.retention.info = 0"),
            "{e:?}"
        );
        let e = errors("[bucket.retention]\ndebug = 1\n");
        assert!(
            e[0].starts_with("agent.toml:1:1: bucket.retention.info is missing"),
            "{e:?}"
        );
        let e = errors("[bucket.retention]\ndebg = 1\n");
        assert!(e[0].contains("did you mean \"debug\""), "{e:?}");
    }

    #[test]
    fn unknown_retention_tier_is_rejected() {
        let e = errors("[bucket.retention_days]\nsystm = 3\n");
        assert!(e[0].contains("did you mean \"system\""), "{e:?}");
    }
}
