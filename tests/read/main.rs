//! The read side (SPEC §10, §14) driven like a user: `logship query` on
//! every bucket kind, the `[api]` listener with real SSE clients, and the
//! DuckDB worked example.

#[path = "../support/mod.rs"]
mod support;

mod agent_s3;
mod api;
mod duckdb;
mod query_corpus;
