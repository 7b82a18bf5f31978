//! How many files the tailer may hold open: a share of the process's
//! `RLIMIT_NOFILE`, the rest kept for everything else.
//!
//! The tailer is the only part of the agent whose descriptor count grows
//! with the input (one per followed file); everything else — stdio, the
//! data_dir lock, inotify, the runtime's epoll and pipes, open segments,
//! the checkpoint being written, sockets to the bucket, Redis, stream
//! sources, metrics and API clients, and the tailer's own short-lived
//! opens (a scan's directory walk, a copy check) — stays within a reserve.
//! Running out there is worse than here: a segment that cannot be opened
//! stops the write path. So the tailer's share is what the limit leaves
//! after a generous reserve, and it closes handles to stay inside it
//! (`tailer` module doc). `logship run` raises the soft limit to the hard
//! one first (`cli::run`), so the budget follows the hard limit.

/// Descriptors kept for the rest of the process, at least.
const MIN_RESERVE: u64 = 64;
/// Fewest handles the tailer works with, whatever the limit.
pub const MIN_OPEN: usize = 8;

/// The soft `RLIMIT_NOFILE` now (`None` if it cannot be read, or is
/// unlimited).
fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(lim.rlim_cur)
}

/// Handles the tailer may keep open under a soft limit of `limit`: the
/// limit less a quarter of it (at least [`MIN_RESERVE`]).
pub fn budget_for(limit: u64) -> usize {
    let reserve = (limit / 4).max(MIN_RESERVE);
    usize::try_from(limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(MIN_OPEN)
}

/// Handles the tailer may keep open in this process.
pub fn budget() -> usize {
    // An unlimited or unreadable limit: the kernel's own ceiling
    // (fs.nr_open, 1,048,576 by default) bounds it anyway.
    budget_for(nofile_limit().unwrap_or(1 << 20))
}

/// Debug builds only: `LOGSHIP_TEST_EMFILE_EVERY=N` makes every Nth open
/// of a file or directory by the tailer fail with EMFILE, as if the process
/// were out of descriptors. The black-box tests use it to reach the
/// out-of-descriptors paths of restore, adoption, reopen and the scan
/// deterministically; a real limit low enough to hit them would starve the
/// rest of the agent first. Release builds never read it.
pub fn injected_failure() -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        static EVERY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        static OPENS: AtomicU64 = AtomicU64::new(0);
        let every = *EVERY.get_or_init(|| {
            std::env::var("LOGSHIP_TEST_EMFILE_EVERY")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
        });
        if let Some(n) = every {
            if (OPENS.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n) {
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_reserve() {
        assert_eq!(budget_for(256), 192);
        assert_eq!(budget_for(1024), 768);
        assert_eq!(budget_for(100), 36);
        assert_eq!(budget_for(20), MIN_OPEN);
        assert_eq!(budget_for(0), MIN_OPEN);
    }
}
