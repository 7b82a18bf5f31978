//! The read side (SPEC §10, §14) driven like a user: `logship query` on
//! every bucket kind, the `[api]` listener with real SSE clients, the
//! DuckDB worked example, and the viewer in a real browser.

#[path = "../support/mod.rs"]
mod support;

mod agent_s3;
mod api;
mod duckdb;
mod query_corpus;
mod viewer;
