//! `[api]`: the read API's listener (SPEC §10). Off unless `listen` is set.
//!
//! The token is a secret: `Debug` masks it, `check` shows only whether it
//! is set. A listener beyond loopback without a token is refused here, at
//! the position of `listen`, so `logship check` and a reload reject it
//! before anything binds.

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, HumanDuration, SourceText};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `host:port`; unset: no API.
    pub listen: Option<Spanned<String>>,
    /// Bearer token every `/api/*` request must carry (when set).
    pub token: Option<String>,
    /// Live-tail clients at once; the next one gets 429.
    pub max_tail_clients: usize,
    /// Exact origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    /// Deliveries (the matching events of one commit) buffered per tail
    /// client; a client whose buffer is full at 3 consecutive deliveries is
    /// disconnected.
    pub tail_buffer: usize,
    /// Recent events kept for `Last-Event-ID` resumption.
    pub tail_replay: usize,
    /// Comment sent to idle tail clients this often.
    pub heartbeat: HumanDuration,
    /// Distinct error signatures tracked by `/api/errors` (least frequent
    /// evicted beyond it).
    pub max_error_signatures: usize,
    /// Queries running at once; more get 503.
    pub max_queries: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: None,
            token: None,
            max_tail_clients: 50,
            cors_origins: Vec::new(),
            tail_buffer: 16,
            tail_replay: 10_000,
            heartbeat: HumanDuration::secs(15),
            max_error_signatures: 2_000,
            max_queries: 4,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen.as_ref().map(|l| l.get_ref()))
            .field("token", &self.token.as_ref().map(|_| "******"))
            .field("max_tail_clients", &self.max_tail_clients)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// The address to bind, when the API is on (validated by [`Self::validate`]).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.as_ref().and_then(|l| l.get_ref().parse().ok())
    }

    /// The token, when set and not empty.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let Some(listen) = &self.listen else {
            return errors;
        };
        let at = Some(listen.span());
        match listen.get_ref().parse::<SocketAddr>() {
            Err(_) => errors.push(src.error_at_parsed(
                at.clone(),
                format!("api.listen {:?} is not an address; write e.g. \"127.0.0.1:9465\"", listen.get_ref()),
            )),
            Ok(a) if !a.ip().is_loopback() && self.token().is_none() => errors.push(src.error_at_parsed(
                at.clone(),
                format!(
                    "api.listen {a} is beyond loopback but api.token is not set; set api.token = \"${{LOGSHIP_API_TOKEN}}\" or listen on 127.0.0.1"
                ),
            )),
            Ok(_) => {}
        }
        for (key, v) in [
            ("max_tail_clients", self.max_tail_clients),
            ("tail_buffer", self.tail_buffer),
            ("max_error_signatures", self.max_error_signatures),
            ("max_queries", self.max_queries),
        ] {
            if v == 0 {
                errors
                    .push(src.error_at_parsed(at.clone(), format!("api.{key} must be at least 1")));
            }
        }
        if self.heartbeat.get().is_zero() {
            errors.push(src.error_at_parsed(at.clone(), "api.heartbeat must be longer than 0s"));
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
    fn beyond_loopback_needs_a_token() {
        assert!(errors("[api]\nlisten = \"127.0.0.1:9465\"\n").is_empty());
        assert!(errors("[api]\nlisten = \"[::1]:9465\"\n").is_empty());
        let e = errors("[metrics]\nenabled = false\n[api]\nlisten = \"0.0.0.0:9465\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("agent.toml:4:10: "), "{}", e[0]);
        assert!(e[0].contains("api.token"), "{}", e[0]);
        assert!(errors("[api]\nlisten = \"0.0.0.0:9465\"\ntoken = \"t\"\n").is_empty());
        assert!(!errors("[api]\nlisten = \"nowhere\"\n").is_empty());
        assert!(!errors("[api]\nlistn = \"127.0.0.1:1\"\n").is_empty());
    }
}
