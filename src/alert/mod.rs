//! Alert rules evaluated beside the pipeline (SPEC §8).
//!
//! INTERFACE ONLY — the engine is being written (issue 5). The pipeline calls
//! [`AlertHandle::offer`] for every written event; it must never block.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, SourceText};
use crate::event::Event;

/// `[alerts]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub redis_url: Option<String>,
    pub channels: BTreeMap<String, toml::Table>,
    pub rules: Vec<toml::Table>,
}

impl AlertsConfig {
    pub fn validate(&self, _src: &SourceText) -> Vec<ConfigError> {
        Vec::new()
    }
}

/// The write path's side of the alert engine: cheap to clone, never blocks.
#[derive(Clone, Debug, Default)]
pub struct AlertHandle {}

impl AlertHandle {
    pub fn disabled() -> AlertHandle {
        AlertHandle {}
    }

    /// Hand an event to the engine; drops (and counts) when the queue is full.
    pub fn offer(&self, _event: &Event) {}
}
