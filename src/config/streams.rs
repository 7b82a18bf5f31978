//! `[streams]`: publish durable events of some tiers to Redis Streams
//! (SPEC §12). Off unless `redis_url` is set.
//!
//! Validation builds what the publisher will use — the Redis client
//! ([`crate::ops::redis::RedisTarget::client`], which reads a CA file) and
//! the key template ([`crate::fanout::key::StreamKey::parse`]) — and maps
//! their errors to the position of the offending value, so `check` refuses
//! exactly what the agent would fail on. The URL may carry a password:
//! `Debug` and `check` show it masked.

use serde::Deserialize;
use toml::Spanned;

use super::{ByteSize, ConfigError, SourceText};
use crate::event::Tier;
use crate::fanout::key::StreamKey;
use crate::ops::redis::{redact_url, RedisTarget};

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// `redis://` or `rediss://` (TLS); unset: no publishing.
    pub redis_url: Option<Spanned<String>>,
    /// For `rediss://`: PEM file of the CA that signed the server's
    /// certificate (default: the system's roots).
    pub redis_ca_file: Option<Spanned<String>>,
    /// Tiers whose events are published.
    pub tiers: Spanned<Vec<Tier>>,
    /// `XADD key MAXLEN ~ maxlen`.
    pub maxlen: Spanned<u64>,
    /// Key template: `{tier}` and `{projectId}` may appear.
    pub key: Spanned<String>,
    /// Events waiting for Redis at most; more are dropped and counted.
    pub queue: Spanned<usize>,
    /// Bytes of events waiting for Redis at most (lines can be 256 KiB).
    pub queue_bytes: ByteSize,
    /// Events sent in one pipelined round trip at most.
    pub batch: Spanned<usize>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            redis_url: None,
            redis_ca_file: None,
            tiers: Spanned::new(0..0, vec![Tier::Deploy, Tier::Build]),
            maxlen: Spanned::new(0..0, 10_000),
            key: Spanned::new(0..0, "logship:{tier}".to_string()),
            queue: Spanned::new(0..0, 10_000),
            queue_bytes: ByteSize::mib(16),
            batch: Spanned::new(0..0, 256),
        }
    }
}

impl std::fmt::Debug for StreamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsConfig")
            .field("redis_url", &self.redis_url_masked())
            .field("tiers", self.tiers.get_ref())
            .field("maxlen", self.maxlen.get_ref())
            .field("key", self.key.get_ref())
            .finish_non_exhaustive()
    }
}

impl StreamsConfig {
    /// Whether publishing is on.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// The Redis server, when publishing is on.
    pub fn redis_target(&self) -> Option<RedisTarget> {
        self.redis_url.as_ref().map(|u| RedisTarget {
            url: u.get_ref().clone(),
            ca_file: self.redis_ca_file.as_ref().map(|c| c.get_ref().clone()),
        })
    }

    /// The URL with any password replaced by `***`.
    pub fn redis_url_masked(&self) -> Option<String> {
        self.redis_url.as_ref().map(|u| redact_url(u.get_ref()))
    }

    /// The parsed key template (valid once the config was validated).
    pub fn stream_key(&self) -> Result<StreamKey, crate::fanout::key::KeyError> {
        StreamKey::parse(self.key.get_ref())
    }

    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |span: std::ops::Range<usize>, msg: String| {
            errors.push(src.error_at_parsed(Some(span), msg))
        };
        let Some(url) = &self.redis_url else {
            if let Some(ca) = &self.redis_ca_file {
                err(
                    ca.span(),
                    "streams.redis_ca_file is set without streams.redis_url; it would not be used"
                        .into(),
                );
            }
            return errors;
        };
        if let Some(target) = self.redis_target() {
            if let Err(e) = target.client() {
                let span = match (&e, &self.redis_ca_file) {
                    (crate::ops::redis::RedisTargetError::CaFile { .. }, Some(ca)) => ca.span(),
                    _ => url.span(),
                };
                err(span, format!("streams.redis_url: {e}"));
            }
        }
        if self.tiers.get_ref().is_empty() {
            err(
                self.tiers.span(),
                "streams.tiers is empty, so nothing would be published; list tiers such as [\"deploy\", \"build\"]".into(),
            );
        }
        if let Err(e) = self.stream_key() {
            err(self.key.span(), e.to_string());
        }
        for (name, v, span) in [
            (
                "maxlen",
                *self.maxlen.get_ref() as usize,
                self.maxlen.span(),
            ),
            ("queue", *self.queue.get_ref(), self.queue.span()),
            ("batch", *self.batch.get_ref(), self.batch.span()),
        ] {
            if v == 0 {
                err(span, format!("streams.{name} must be at least 1"));
            }
        }
        if self.queue_bytes.0 < 1024 * 1024 {
            err(
                url.span(),
                "streams.queue_bytes must be at least 1MiB (one event can be 256 KiB)".into(),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(text: &str) -> Vec<String> {
        match crate::config::load_str(Path::new("agent.toml"), text.to_string(), &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn streams_are_off_by_default_and_validated_when_on() {
        let l = crate::config::load_str(Path::new("a.toml"), String::new(), &|_| None).unwrap();
        assert!(!l.config.streams.enabled());
        assert!(errors("[streams]\nredis_url = \"redis://127.0.0.1:6379\"\n").is_empty());
        let e = errors("[streams]\nredis_url = \"http://x\"\n");
        assert!(
            e[0].starts_with("agent.toml:2:13: streams.redis_url"),
            "{e:?}"
        );
        let e = errors("[streams]\nredis_url = \"redis://h\"\nkey = \"s:{buildId}\"\n");
        assert!(e[0].starts_with("agent.toml:3:7: "), "{e:?}");
        assert!(e[0].contains("{projectId}"), "{e:?}");
        let e = errors("[streams]\nredis_url = \"redis://h\"\ntiers = []\nmaxlen = 0\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("agent.toml:3:9: streams.tiers is empty"),
            "{e:?}"
        );
        assert!(e[1].starts_with("agent.toml:4:10: streams.maxlen"), "{e:?}");
        let e = errors("[streams]\nredis_url = \"redis://h\"\ntiers = [\"deploi\"]\n");
        assert!(e[0].contains("did you mean \"deploy\""), "{e:?}");
        let e = errors("[streams]\nredis_ca_file = \"/ca.pem\"\n");
        assert!(e[0].starts_with("agent.toml:2:17: "), "{e:?}");
        let e =
            errors("[streams]\nredis_url = \"rediss://h\"\nredis_ca_file = \"/nonexistent.pem\"\n");
        assert!(e[0].starts_with("agent.toml:3:17: "), "{e:?}");
        let e = errors("[streams]\nredis_urll = \"redis://h\"\n");
        assert!(e[0].contains("did you mean \"redis_url\""), "{e:?}");
    }

    #[test]
    fn the_password_is_masked() {
        let l = crate::config::load_str(
            Path::new("a.toml"),
            "[streams]\nredis_url = \"redis://:hunter2@127.0.0.1:6379\"\n".into(),
            &|_| None,
        )
        .unwrap();
        let shown = format!("{:?}", l.config.streams);
        assert!(
            !shown.contains("hunter2") && shown.contains("***@127.0.0.1"),
            "{shown}"
        );
    }
}
