//! Shipping: the S3 client, the upload queue and the agent against a real S3 server (Garage).
//!
//! One test binary per seam (link time dominates CI on two cores); each file below was a binary of its own.

#[path = "../support/mod.rs"]
mod support;

mod retention;
mod s3_agent;
mod s3_backlog;
mod s3_bucket;
mod s3_credentials;
mod s3_stream;
mod s3_uploader;
mod streams;
