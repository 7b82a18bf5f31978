//! Redaction of secrets and PEM private keys (SPEC §1 `msg`/`data`).
//!
//! INTERFACE ONLY — the engine is being written (issue 3). The pipeline calls:
//! - [`Redactor::new`] once per config (shared behind an `Arc`),
//! - [`Redactor::redact_msg`] for each event's `msg`, with the per-stream
//!   [`StreamState`] (PEM blocks span lines),
//! - [`Redactor::redact_data`] for each event's structured `data`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfigError, SourceText};

/// `[redaction]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    pub enabled: bool,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig { enabled: true }
    }
}

impl RedactionConfig {
    pub fn validate(&self, _src: &SourceText) -> Vec<ConfigError> {
        Vec::new()
    }
}

/// Compiled redaction rules; `Send + Sync`, built once per config.
#[derive(Debug, Clone)]
pub struct Redactor {
    enabled: bool,
}

/// Per-stream state (one per tailed file); never shared between streams.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {}

impl Redactor {
    pub fn new(cfg: &RedactionConfig) -> Result<Redactor, String> {
        Ok(Redactor {
            enabled: cfg.enabled,
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redact one message in place; returns how many secrets were replaced.
    pub fn redact_msg(&self, _state: &mut StreamState, _msg: &mut String) -> usize {
        0
    }

    /// Deep-redact a structured payload in place.
    pub fn redact_data(&self, _data: &mut Map<String, Value>) -> usize {
        0
    }
}
