//! Running the agent as a service: metrics, endpoints, signals, reload.

pub mod disk;
pub mod http;
pub mod log;
pub mod metrics;
pub mod readiness;
pub mod redis;
pub mod reload;
pub mod shutdown;
pub mod systemd;

pub use readiness::Readiness;
