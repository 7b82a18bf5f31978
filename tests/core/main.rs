//! Core integration tests: the agent's write path driven like a user would.

#[path = "../support/mod.rs"]
mod support;

mod checkpoint_compat;
mod line_path;
