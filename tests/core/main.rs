//! Core integration tests: the agent's write path driven like a user would.

#[path = "../support/mod.rs"]
mod support;

mod line_path;
