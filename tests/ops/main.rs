//! Operations: metrics and health endpoints, reload, systemd notify/watchdog, packaging, memory limits.
//!
//! One test binary per seam (link time dominates CI on two cores); each file below was a binary of its own.

mod ops_support;
#[path = "../support/mod.rs"]
mod support;

mod ops_container;
mod ops_http;
mod ops_log;
mod ops_memory_limit;
mod ops_metrics;
mod ops_packaging;
mod ops_reload;
mod ops_reload_restart;
mod ops_reload_sighup;
mod ops_systemd;
