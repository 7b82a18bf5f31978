//! Alerts: rule windows, delivery channels, suppression across agents and `logship check` of alert rules.
//!
//! One test binary per seam (link time dominates CI on two cores); each file below was a binary of its own.

#[path = "../support/mod.rs"]
mod support;

mod alert_agents;
mod alert_check;
mod alert_delivery;
mod alert_fleet;
mod alert_redis_tls;
mod alert_windows;
