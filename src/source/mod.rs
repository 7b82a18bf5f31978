//! Finding and tailing files: discovery (globs + notify), file identity,
//! reading lines, and the checkpoints that make restarts exact.

pub mod discover;
pub mod file;
pub mod lines;
pub mod tailer;
pub mod template;
pub mod watch;
