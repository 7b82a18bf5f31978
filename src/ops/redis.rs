//! Connecting to Redis: the one place that turns a configured URL (and,
//! for TLS, a CA file) into a client, used by `check` and by the agent
//! alike, so what `check` accepts is what runs. Shared by the alert
//! suppression (`alerts.redis_url`) and the Streams publisher
//! (`streams.redis_url`).

/// A Redis server to talk to: its URL (`redis://` or `rediss://` for TLS)
/// and, for TLS, a private CA to trust (`alerts.redis_ca_file`,
/// `streams.redis_ca_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTarget {
    pub url: String,
    /// PEM file of the CA(s) that signed the server's certificate; without
    /// it, `rediss://` trusts the system's roots.
    pub ca_file: Option<String>,
}

/// A Redis target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisTargetError {
    #[error("cannot read redis_ca_file {path:?}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("redis_ca_file is set but the url is not rediss:// (TLS); the CA would not be used")]
    CaWithoutTls,
    #[error(
        "not usable ({0}); write e.g. \"redis://127.0.0.1:6379\" or \"rediss://host:6380\" for TLS"
    )]
    Url(#[from] redis::RedisError),
}

impl RedisTarget {
    /// The client for this target: the one constructor, used by `check`
    /// (validation builds it) and by the agent. Reads and parses the CA
    /// file, so a bad file is a config error, not a failure at start.
    pub fn client(&self) -> Result<redis::Client, RedisTargetError> {
        if self.url.starts_with("rediss://") {
            ensure_tls_provider();
        }
        let Some(path) = &self.ca_file else {
            return Ok(redis::Client::open(self.url.as_str())?);
        };
        if !self.url.starts_with("rediss://") {
            return Err(RedisTargetError::CaWithoutTls);
        }
        let root_cert = std::fs::read(path).map_err(|source| RedisTargetError::CaFile {
            path: path.clone(),
            source,
        })?;
        Ok(redis::Client::build_with_tls(
            self.url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )?)
    }
}

/// redis-rs builds its TLS config from rustls' process-wide provider, and
/// more than one provider is linked (the S3 and HTTP clients bring their
/// own), so one must be chosen before the first TLS connection.
pub fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only if another part of the process installed one first,
        // which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// `redis://user:pass@host` -> `redis://***@host`: the URL may carry a password.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, ca_file: Option<&str>) -> RedisTarget {
        RedisTarget {
            url: url.into(),
            ca_file: ca_file.map(str::to_string),
        }
    }

    #[test]
    fn redis_targets_are_checked_by_building_the_client() {
        assert!(target("redis://127.0.0.1:6379", None).client().is_ok());
        assert!(target("rediss://127.0.0.1:6380", None).client().is_ok());
        let e = target("redis://127.0.0.1:6379", Some("/etc/ca.pem"))
            .client()
            .unwrap_err();
        assert!(matches!(e, RedisTargetError::CaWithoutTls), "{e}");
        let e = target("rediss://127.0.0.1:6380", Some("/nonexistent/ca.pem"))
            .client()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let e = target("http://127.0.0.1", None).client().unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{e}");
    }

    #[test]
    fn redis_password_is_hidden() {
        assert_eq!(
            redact_url("redis://:s3cret@h:6379/0"),
            "redis://***@h:6379/0"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    }
}
