//! Property tests: the tailer against a model of its files, and redaction on generated input.
//!
//! One test binary per seam (link time dominates CI on two cores); each file below was a binary of its own.

#[path = "../support/mod.rs"]
mod support;

mod records_model;
mod redact_props;
mod tailer_model;
