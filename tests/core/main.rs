//! The agent end to end: lifecycle, crash recovery, rotation, hostile input, redaction and the CLI.
//!
//! One test binary per seam (link time dominates CI on two cores); each file below was a binary of its own.

#[path = "../support/mod.rs"]
mod support;

mod checkpoint_compat;
mod core_checkpoint_repair;
mod core_cli;
mod core_clock;
mod core_crash;
mod core_disk;
mod core_hostile;
mod core_idle_seal;
mod core_lifecycle;
mod core_multiline;
mod core_open_files;
mod core_redaction;
mod core_rotation;
mod core_watch_limit;
mod formats;
mod line_path;
mod redact_cli;
mod redact_corpus;
mod redact_heldout;
mod stream_sources;
