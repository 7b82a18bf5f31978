//! Redaction of secrets and PEM private keys (SPEC §1 `msg`/`data`), on by
//! default.
//!
//! The pipeline calls [`Redactor::new`] once per config (clone it freely: it
//! is an `Arc`), [`Redactor::redact_msg`] for each event's `msg` with the
//! stream's [`StreamState`] (PEM blocks span lines), and
//! [`Redactor::redact_data`] for each event's structured `data`.
//!
//! The detectors, one module each:
//! - [`pem`]: the per-stream state machine for private-key blocks;
//! - [`rules`]: provider formats (`ghp_...`, `AKIA...`, JWTs, ...);
//! - [`context`]: prefix-less provider keys after a key naming the provider
//!   (`TWILIO_AUTH_TOKEN=`, `"algoliaKey":`);
//! - [`keys`]: values of sensitive keys in JSON, logfmt, `key: value`, HTTP
//!   headers, env lines, URL userinfo and query strings;
//! - [`pii`]: opt-in personal data (e-mail, cards, IP addresses, phones);
//! - [`engine`]: prefiltering, running the detectors, merging and replacing.
//!
//! A secret becomes `[REDACTED:<rule>]` (or, with `mode = "hash"`,
//! `[REDACTED:<rule>:<tag>]`, a keyed HMAC of the secret); the key, scheme
//! and surrounding text stay, so the line remains useful. Redaction is
//! deterministic and idempotent: markers are never matched again.

mod config;
pub mod context;
mod engine;
pub mod keys;
pub mod pem;
pub mod pii;
pub mod rules;
#[doc(hidden)]
pub mod selfcheck;
mod shape;

pub use config::{EmailStyle, HashKey, PatternConfig, PiiKind, RedactMode, RedactionConfig};
pub use engine::{RedactError, RedactErrors, Redactor};
pub use keys::KeyError;
pub use pem::StreamState;

#[cfg(test)]
mod tests;
