//! Finding and tailing files: discovery (globs + notify), file identity,
//! reading lines, and the checkpoints that make restarts exact.

pub mod discover;
pub mod template;
