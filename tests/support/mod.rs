//! Shared test harness: real processes and servers (the agent, Redis, SMTP,
//! HTTP receivers), started per test on temporary directories and ephemeral
//! loopback ports, stopped and cleaned up when dropped.
#![allow(dead_code)]

pub mod agent;
pub mod alert_util;
pub mod http_receiver;
pub mod redis_server;
pub mod smtp_sink;
