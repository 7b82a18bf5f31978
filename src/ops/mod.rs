//! Running the agent as a service: metrics, endpoints, signals, reload.

pub mod metrics;
pub mod shutdown;
