//! Real servers for integration tests, started on loopback with ephemeral
//! ports. Each test binary uses what it needs.
#![allow(dead_code)]

pub mod garage;
pub mod s3_proxy;
