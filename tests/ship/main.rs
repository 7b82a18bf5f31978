//! Shipping: buckets, the upload queue, the agent end to end against Garage.
#[path = "../support/mod.rs"]
mod support;

mod s3_stream;
