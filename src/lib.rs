//! logship: a log-shipping agent.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! source (discover, tail, checkpoint) -> normalize -> redact -> segment -> ship
//!                                                       \-> alert
//! ```
//!
//! `config` describes it, `ops` runs it as a service, `cli` is the command line.

pub mod alert;
pub mod api;
pub mod cli;
pub mod config;
pub mod event;
pub mod fanout;
pub mod normalize;
pub mod ops;
pub mod pipeline;
pub mod read;
pub mod redact;
pub mod segment;
pub mod ship;
pub mod source;
