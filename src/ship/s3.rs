//! Cloudflare R2 and other S3-compatible stores, through `aws-sdk-s3`.
//!
//! R2 implements a subset of S3, so every request is kept to headers it
//! understands (SPEC §3):
//! - request checksums are computed only when an operation requires one and
//!   response checksums validated only when required; a PUT carries the
//!   `Content-MD5` we compute ourselves, never `x-amz-checksum-*` or an
//!   aws-chunked body with trailers;
//! - addressing is path-style (`{endpoint}/{bucket}/{key}`), which R2, MinIO
//!   and Garage all accept without wildcard DNS.
//!
//! The SDK's own retries are off: [`super::uploader`] is the one place that
//! retries, so backoff, metrics and "never drop" live together. The SDK has
//! no timeouts by default; connect and per-request limits come from config.
//!
//! The upload queue's PUTs ([`Bucket::put_file`]) stream the sealed file
//! from disk in 64 KiB reads, with the MD5 and SHA-256 the seal thread
//! computed while compressing ([`super::digest`]): no body is held in
//! memory, and nothing is hashed twice. Over `https` the payload is sent as
//! `UNSIGNED-PAYLOAD` (TLS protects it in transit, and the signed
//! `Content-MD5` makes the bucket check the exact bytes); over plain `http`
//! the signature covers the payload's precomputed SHA-256, so a body altered
//! on the way is refused.
//!
//! Objects are stored with `Content-Type: application/x-ndjson` and *no*
//! `Content-Encoding`: the object is a `.ndjson.gz` file, and clients that
//! see `Content-Encoding: gzip` (browsers, `curl --compressed`, some SDKs
//! and proxies) decompress transparently on GET, so the bytes downloaded
//! would no longer match the stored size, ETag or Content-MD5, and tools
//! that gunzip `.gz` files would fail on already-plain text.

mod classify;
mod lifecycle;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use base64::Engine;
use md5::{Digest, Md5};

use super::digest::ObjectFile;
use super::{Bucket, Depth, ListPage, Listed, ObjectBody, ObjectInfo, ObjectMeta, ShipError};

pub use lifecycle::LifecycleRule;

/// Content-Type of every object: one unified event per line.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// Everything needed to talk to one bucket; built from `[bucket]` by
/// [`super::from_config`], or directly by tests.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://{account}.r2.cloudflarestorage.com`, or any S3 endpoint.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub connect_timeout: Duration,
    /// Limit on one request, body upload included.
    pub operation_timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    // Hand-written so the secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// From `[bucket]` (already validated; re-checked here so a caller that
    /// skipped validation gets a clear error rather than a confusing request).
    pub fn from_config(b: &crate::config::BucketConfig) -> anyhow::Result<S3Settings> {
        use crate::config::BucketKind;
        let need = |v: &Option<String>, key: &str| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("bucket.{key} is not set"))
        };
        let endpoint = b.endpoint_url().ok_or_else(|| match b.kind {
            BucketKind::R2 => anyhow::anyhow!("bucket.account_id (or bucket.endpoint) is not set"),
            _ => anyhow::anyhow!("bucket.endpoint is not set"),
        })?;
        let default_region = if b.kind == BucketKind::R2 {
            "auto"
        } else {
            "us-east-1"
        };
        Ok(S3Settings {
            endpoint,
            region: b
                .region
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| default_region.into()),
            bucket: need(&b.bucket, "bucket")?,
            access_key_id: need(&b.access_key_id, "access_key_id")?,
            secret_access_key: need(&b.secret_access_key, "secret_access_key")?,
            connect_timeout: b.connect_timeout.get(),
            operation_timeout: b.operation_timeout.get(),
        })
    }
}

/// An S3-compatible bucket.
pub struct S3Bucket {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
    /// How streamed PUT bodies are signed (by the endpoint's scheme).
    payload: PayloadSigning,
}

/// What the SigV4 signature of a streamed PUT covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayloadSigning {
    /// `UNSIGNED-PAYLOAD`: over TLS, which already protects the body.
    Unsigned,
    /// The body's SHA-256, precomputed at sealing: over plain HTTP.
    Sha256,
}

/// Reads of a streamed body: large enough that a 16 MiB object is a few
/// hundred reads, small enough that many uploads in flight stay cheap.
const BODY_READ: usize = 64 * 1024;

impl S3Bucket {
    pub fn new(s: &S3Settings) -> S3Bucket {
        S3Bucket::with_config(s, aws_sdk_s3::Config::builder())
    }

    /// As [`S3Bucket::new`], starting from a caller's builder (tests add
    /// interceptors this way).
    pub fn with_config(s: &S3Settings, builder: aws_sdk_s3::config::Builder) -> S3Bucket {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(s.connect_timeout)
            .operation_attempt_timeout(s.operation_timeout)
            .operation_timeout(s.operation_timeout)
            .build();
        let config = builder
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&s.endpoint)
            .region(Region::new(s.region.clone()))
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &s.access_key_id,
                &s.secret_access_key,
                None,
                None,
                "logship-config",
            ))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled())
            .build();
        let tls = s
            .endpoint
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        S3Bucket {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: s.bucket.clone(),
            endpoint: s.endpoint.clone(),
            payload: if tls {
                PayloadSigning::Unsigned
            } else {
                PayloadSigning::Sha256
            },
        }
    }

    /// The underlying client, for operations the [`Bucket`] trait lacks.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket_name(&self) -> &str {
        &self.bucket
    }
}

/// base64 of the MD5 of `bytes`: the `Content-MD5` header value.
pub fn content_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

#[async_trait]
impl Bucket for S3Bucket {
    async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError> {
        let md5 = content_md5(&body);
        let len = body.len() as i64;
        let metadata: HashMap<String, String> = meta.to_map().into_iter().collect();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .content_md5(md5)
            .content_length(len)
            .set_metadata(Some(metadata))
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify::ship_error("PUT", key, e))
    }

    async fn put_file(
        &self,
        key: &str,
        obj: &ObjectFile,
        meta: &ObjectMeta,
    ) -> Result<(), ShipError> {
        let body = ByteStream::read_from()
            .path(&obj.path)
            .length(Length::Exact(obj.len))
            .buffer_size(BODY_READ)
            .build()
            .await
            .map_err(|e| ShipError::soon(format!("reading {}: {e}", obj.path.display())))?;
        let metadata: HashMap<String, String> = meta.to_map().into_iter().collect();
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .content_md5(obj.digest.content_md5())
            .content_length(obj.len as i64)
            .set_metadata(Some(metadata))
            .body(body)
            .customize();
        let request = match self.payload {
            PayloadSigning::Unsigned => request.disable_payload_signing(),
            PayloadSigning::Sha256 => request.interceptor(SignedPayload(obj.digest.sha256_hex())),
        };
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify::ship_error("PUT", key, e))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ShipError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(ObjectInfo {
                size: o.content_length().unwrap_or(0).max(0) as u64,
                meta: o
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })),
            Err(e) if classify::is_not_found(&e) => Ok(None),
            Err(e) => Err(classify::ship_error("HEAD", key, e)),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        depth: Depth,
        token: Option<String>,
    ) -> Result<ListPage, ShipError> {
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(token);
        if depth == Depth::OneLevel {
            req = req.delimiter("/");
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify::ship_error("LIST", prefix, e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        let dirs = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_string))
            .collect();
        let next = match out.is_truncated() {
            Some(true) => out.next_continuation_token().map(str::to_string),
            _ => None,
        };
        Ok(ListPage {
            objects,
            dirs,
            next,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<(ObjectInfo, ObjectBody)>, ShipError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match out {
            Ok(o) => {
                let info = ObjectInfo {
                    size: o.content_length().unwrap_or(0).max(0) as u64,
                    meta: lowercase_keys(o.metadata()),
                };
                let body: ObjectBody = Box::pin(o.body.into_async_read());
                Ok(Some((info, body)))
            }
            Err(aws_sdk_s3::error::SdkError::ServiceError(s))
                if s.err().is_no_such_key() || s.raw().status().as_u16() == 404 =>
            {
                Ok(None)
            }
            Err(e) => Err(classify::ship_error("GET", key, e)),
        }
    }

    fn describe(&self) -> String {
        format!("s3:{}/{}", self.endpoint, self.bucket)
    }
}

/// User metadata with lowercase keys (servers differ in the case they return).
fn lowercase_keys(
    m: Option<&HashMap<String, String>>,
) -> std::collections::BTreeMap<String, String> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// Signs a streamed body with its precomputed SHA-256. The SDK signs bodies
/// it cannot see in memory as `UNSIGNED-PAYLOAD`; this puts the real hash in
/// the signature (and in `x-amz-content-sha256`) instead.
#[derive(Debug)]
struct SignedPayload(String);

impl Intercept for SignedPayload {
    fn name(&self) -> &'static str {
        "logship::SignedPayload"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(aws_runtime::auth::PayloadSigningOverride::Precomputed(
                self.0.clone(),
            ));
        Ok(())
    }
}
