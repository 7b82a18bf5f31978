//! Real servers for black-box tests, one module each; started on loopback
//! with ephemeral ports and stopped when dropped.
#![allow(dead_code)]

pub mod alert_util;
pub mod http_receiver;
pub mod redis_server;
pub mod smtp_sink;
