//! Finding and tailing files: discovery (globs + inotify), file identity,
//! reading lines, and the checkpoints that make restarts exact; and the
//! event-stream sources that follow HTTP responses instead ([`stream`]).

pub mod discover;
pub mod fds;
pub mod file;
pub mod lines;
pub mod stream;
pub mod tailer;
pub mod template;
pub mod watch;
