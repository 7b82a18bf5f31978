//! Change notification: inotify through `notify`, with polling as the
//! fallback and the safety net.
//!
//! Directories are watched (not files), so files created later are seen and
//! a rename keeps being followed. Events only say "look here soon"; the
//! tailer's own stat/fingerprint logic decides what happened, so a missed or
//! coalesced event costs latency (until the next poll), never data.
//!
//! A directory that cannot be watched (the inotify watch limit,
//! `fs.inotify.max_user_watches`, is reached) is *polled* instead: its files
//! are looked at every [`POLL_WITHOUT`] while the watched ones keep the 1 s
//! safety net, so a limit hit on one source does not make the agent poll
//! every file four times a second. The first fallback is logged (later
//! ones at debug level), each is counted (`logship_watch_fallbacks_total`),
//! and `logship_polled_dirs` says how many are polled now; watching is
//! retried at every rescan, so raising the limit takes effect by itself.
//! Without inotify at all (its instances exhausted), every directory is
//! polled.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::ops::metrics::metrics;

/// What the watcher tells the pipeline.
#[derive(Debug)]
pub enum Change {
    /// Something happened to this path (write, create, rename, remove).
    Path(PathBuf, bool),
    /// The backend lost events (queue overflow): rescan everything.
    Rescan,
    /// Not from the watcher: event-stream lines were queued while the
    /// pipeline may be waiting (`source::stream::Sink`).
    Wake,
}

pub struct Watcher {
    inner: Option<notify::RecommendedWatcher>,
    watched: Vec<(PathBuf, bool)>,
    /// Poll interval in use: short without inotify, a safety net with it.
    pub poll_interval: Duration,
    /// Roots that could not be watched: polled every [`POLL_WITHOUT`].
    polled: Vec<PathBuf>,
    warned: bool,
}

/// Poll interval when inotify works (a safety net for missed events).
const POLL_WITH_INOTIFY: Duration = Duration::from_secs(1);
/// Poll interval when it does not.
pub const POLL_WITHOUT: Duration = Duration::from_millis(250);

/// Debug builds only: `LOGSHIP_TEST_INOTIFY_WATCH_LIMIT=N` makes every
/// watch after the first N fail as if the inotify watch limit were reached.
/// The black-box tests use it because lowering `fs.inotify.max_user_watches`
/// would change it for every process of the host, other tests included.
fn test_watch_limit() -> Option<usize> {
    #[cfg(debug_assertions)]
    {
        static LIMIT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
        *LIMIT.get_or_init(|| {
            std::env::var("LOGSHIP_TEST_INOTIFY_WATCH_LIMIT")
                .ok()
                .and_then(|v| v.parse().ok())
        })
    }
    #[cfg(not(debug_assertions))]
    {
        None
    }
}

impl Watcher {
    /// Start a watcher sending to `tx`. Falls back to polling (and says so)
    /// when inotify cannot be initialised.
    pub fn new(tx: mpsc::Sender<Change>) -> Watcher {
        let handler = move |res: notify::Result<notify::Event>| {
            let msg = match res {
                Ok(ev) if ev.need_rescan() => Change::Rescan,
                // Opens and closes (our own scans and reads among them) say
                // nothing about content; reacting to them would make every
                // scan trigger the next one.
                Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => return,
                Ok(ev) => {
                    let structural = matches!(
                        ev.kind,
                        EventKind::Create(_)
                            | EventKind::Remove(_)
                            | EventKind::Modify(notify::event::ModifyKind::Name(_))
                    );
                    for p in ev.paths {
                        let _ = tx.send(Change::Path(p, structural));
                    }
                    return;
                }
                Err(_) => Change::Rescan,
            };
            // The receiver is gone only when the agent is stopping.
            let _ = tx.send(msg);
        };
        match notify::recommended_watcher(handler) {
            Ok(w) => Watcher {
                inner: Some(w),
                watched: Vec::new(),
                poll_interval: POLL_WITH_INOTIFY,
                polled: Vec::new(),
                warned: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable (fs.inotify.max_user_instances reached?); polling files every {POLL_WITHOUT:?} instead");
                metrics().watch_fallbacks.inc();
                Watcher {
                    inner: None,
                    watched: Vec::new(),
                    poll_interval: POLL_WITHOUT,
                    polled: Vec::new(),
                    warned: true,
                }
            }
        }
    }

    /// Make sure every root is watched; roots that do not exist yet are
    /// retried on the next call. Returns whether all roots are watched.
    pub fn ensure(&mut self, roots: &[(PathBuf, bool)]) -> bool {
        let Some(w) = self.inner.as_mut() else {
            // Everything is polled, at the short interval already.
            return false;
        };
        let mut all = true;
        for (dir, recursive) in roots {
            if self.watched.iter().any(|(d, r)| d == dir && r == recursive) {
                continue;
            }
            if !dir.is_dir() {
                all = false;
                continue;
            }
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            let result = match test_watch_limit() {
                Some(n) if self.watched.len() >= n => Err(notify::Error::generic(
                    "inotify watch limit reached (simulated: LOGSHIP_TEST_INOTIFY_WATCH_LIMIT)",
                )),
                _ => w.watch(dir, mode),
            };
            match result {
                Ok(()) => {
                    self.watched.push((dir.clone(), *recursive));
                    if let Some(i) = self.polled.iter().position(|d| d == dir) {
                        self.polled.swap_remove(i);
                        tracing::info!(dir = %dir.display(), "directory watched again; no longer polled");
                    }
                }
                Err(e) => {
                    all = false;
                    if self.polled.contains(dir) {
                        continue;
                    }
                    self.polled.push(dir.clone());
                    metrics().watch_fallbacks.inc();
                    if !self.warned {
                        self.warned = true;
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory (inotify watch limit? see fs.inotify.max_user_watches); polling it every {POLL_WITHOUT:?} instead (further directories at debug level; see logship_polled_dirs)");
                    } else {
                        tracing::debug!(dir = %dir.display(), error = %e, "cannot watch directory; polling it");
                    }
                }
            }
        }
        // A watched root that vanished must be re-added when it comes back.
        self.watched.retain(|(d, _)| d.is_dir());
        metrics().polled_dirs.set(self.polled.len() as i64);
        all
    }

    /// Whether files under `path` are polled at the short interval (their
    /// directory could not be watched), beyond the 1 s safety net.
    pub fn is_polled(&self, path: &Path) -> bool {
        self.polled.iter().any(|d| path.starts_with(d))
    }

    /// Whether any directory is polled at the short interval.
    pub fn polls_some(&self) -> bool {
        !self.polled.is_empty()
    }
}
