//! Shared test harness: real processes and servers, started per test on
//! temporary directories and ephemeral loopback ports, cleaned up on drop.
#![allow(dead_code)]

pub mod agent;
