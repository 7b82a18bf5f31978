//! Shared test harness: real processes and servers (the agent, Garage,
//! Redis, SMTP, HTTP receivers, a fault-injecting S3 proxy), started per test
//! on temporary directories and ephemeral loopback ports, stopped and cleaned
//! up when dropped. Each test binary uses what it needs.
#![allow(dead_code)]

pub mod agent;
pub mod alert_util;
pub mod garage;
pub mod http_receiver;
pub mod prom;
pub mod read;
pub mod redis_server;
pub mod s3_proxy;
pub mod smtp_sink;
pub mod tls;
pub mod vercel_mock;

/// Serializes the tests of one binary that change or read exact values of
/// the process-wide metrics (`logship::ops::metrics::metrics()`): the
/// registry is global, and the tests of a binary run in parallel threads.
pub async fn metrics_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
