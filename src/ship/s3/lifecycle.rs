//! Bucket retention as lifecycle (expiration) rules, one per tier.
//!
//! Chosen over a `logship prune` command because the store then expires
//! objects itself: nothing to schedule, nothing that stops when agents stop,
//! and no list/delete requests to pay for. It is opt-in (`bucket.lifecycle`)
//! because setting rules needs a bucket-admin token, which a write-only
//! agent token should not be.
//!
//! The rules are merged, not overwritten: S3 replaces a bucket's whole
//! lifecycle configuration on every PUT, so rules that logship does not own
//! (ids not of the form `logship:{key root}`) are read first and kept. Many
//! agents applying the same config write the same rules, so racing is
//! harmless.
//!
//! PutBucketLifecycleConfiguration requires an integrity checksum, and the
//! SDK adds `x-amz-checksum-crc32` for it even when checksums are only
//! computed "when required". R2 does not accept those headers everywhere,
//! so this request is rewritten before signing: checksum headers removed,
//! `Content-MD5` (which every S3 implementation accepts) added instead.

use aws_sdk_s3::config::http::HttpRequest;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRuleFilter,
};

use super::{classify, content_md5, S3Bucket};
use crate::config::bucket::RetentionDays;
use crate::event::Tier;
use crate::ship::ShipError;

/// One expiration rule: objects under `prefix` expire after `days`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    /// 0 = keep forever (the rule is removed, not written).
    pub days: u32,
}

/// The first key component of each tier (SPEC §3).
pub fn tier_key_root(tier: Tier) -> &'static str {
    match tier {
        Tier::System => "system/",
        Tier::Build => "builds/",
        Tier::Deploy => "deploys/",
        Tier::Action => "projects/",
        Tier::Lifecycle => "lifecycle/",
    }
}

impl LifecycleRule {
    /// One rule per tier under `key_prefix` (normalized, without slashes).
    pub fn for_tiers(key_prefix: &str, days: &RetentionDays) -> Vec<LifecycleRule> {
        Tier::ALL
            .into_iter()
            .map(|t| {
                let prefix = match key_prefix {
                    "" => tier_key_root(t).to_string(),
                    p => format!("{p}/{}", tier_key_root(t)),
                };
                LifecycleRule {
                    id: format!("logship:{prefix}"),
                    prefix,
                    days: days.get(t),
                }
            })
            .collect()
    }
}

impl S3Bucket {
    /// Make the bucket's lifecycle rules for `rules` match, keeping rules
    /// logship does not own.
    pub async fn apply_lifecycle(&self, rules: &[LifecycleRule]) -> Result<(), ShipError> {
        let what = "lifecycle";
        let existing = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => out.rules().to_vec(),
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("NoSuchLifecycleConfiguration") =>
            {
                Vec::new()
            }
            Err(e) => return Err(classify::ship_error("GET", what, e)),
        };
        let ours = |id: Option<&str>| id.is_some_and(|id| rules.iter().any(|r| r.id == id));
        let mut merged: Vec<_> = existing.into_iter().filter(|r| !ours(r.id())).collect();
        for r in rules.iter().filter(|r| r.days > 0) {
            let rule = aws_sdk_s3::types::LifecycleRule::builder()
                .id(&r.id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
                .expiration(
                    LifecycleExpiration::builder()
                        .days(i32::try_from(r.days).unwrap_or(i32::MAX))
                        .build(),
                )
                .build()
                .map_err(|e| ShipError::slowly(format!("building lifecycle rule: {e}")))?;
            merged.push(rule);
        }
        if merged.is_empty() {
            // S3 rejects an empty rule list; no rules at all means delete.
            return self
                .client
                .delete_bucket_lifecycle()
                .bucket(&self.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify::ship_error("DELETE", what, e));
        }
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(merged))
            .build()
            .map_err(|e| ShipError::slowly(format!("building lifecycle configuration: {e}")))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(config)
            .customize()
            .mutate_request(md5_instead_of_checksums)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify::ship_error("PUT", what, e))
    }
}

/// Runs after the SDK's checksum step and before signing.
fn md5_instead_of_checksums(req: &mut HttpRequest) {
    let checksum_headers: Vec<String> = req
        .headers()
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|n| {
            n.starts_with("x-amz-checksum-")
                || n == "x-amz-sdk-checksum-algorithm"
                || n == "x-amz-trailer"
        })
        .collect();
    for name in checksum_headers {
        req.headers_mut().remove(name);
    }
    // The lifecycle XML is always an in-memory body; a streaming one would
    // simply go without Content-MD5 and be refused loudly by the store.
    if let Some(md5) = req.body().bytes().map(content_md5) {
        req.headers_mut().insert("content-md5", md5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_every_tier_under_the_prefix() {
        let days = RetentionDays {
            build: 0,
            ..Default::default()
        };
        let rules = LifecycleRule::for_tiers("fleet-a", &days);
        assert_eq!(rules.len(), 5);
        assert_eq!(rules[0].prefix, "fleet-a/system/");
        assert_eq!(rules[0].id, "logship:fleet-a/system/");
        assert_eq!(rules[1].days, 0);
        assert_eq!(LifecycleRule::for_tiers("", &days)[3].prefix, "projects/");
    }
}
