//! The read side: the query engine, the API and the viewer, driven like a user.
#[path = "../support/mod.rs"]
mod support;

mod viewer;
