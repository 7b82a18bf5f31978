//! Change notification: inotify through `notify`, with polling as the
//! fallback and the safety net.
//!
//! Directories are watched (not files), so files created later are seen and
//! a rename keeps being followed. Events only say "look here soon"; the
//! tailer's own stat/fingerprint logic decides what happened, so a missed or
//! coalesced event costs latency (until the next poll), never data.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};

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
    warned: bool,
}

/// Poll interval when inotify works (a safety net for missed events).
const POLL_WITH_INOTIFY: Duration = Duration::from_secs(1);
/// Poll interval when it does not.
const POLL_WITHOUT: Duration = Duration::from_millis(250);

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
                warned: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; polling files every {POLL_WITHOUT:?} instead");
                Watcher {
                    inner: None,
                    watched: Vec::new(),
                    poll_interval: POLL_WITHOUT,
                    warned: true,
                }
            }
        }
    }

    /// Make sure every root is watched; roots that do not exist yet are
    /// retried on the next call. Returns whether all roots are watched.
    pub fn ensure(&mut self, roots: &[(PathBuf, bool)]) -> bool {
        let Some(w) = self.inner.as_mut() else {
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
            match w.watch(dir, mode) {
                Ok(()) => self.watched.push((dir.clone(), *recursive)),
                Err(e) => {
                    all = false;
                    if !self.warned {
                        self.warned = true;
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory (inotify watch limit? see fs.inotify.max_user_watches); polling every {POLL_WITHOUT:?} instead");
                    }
                    self.poll_interval = POLL_WITHOUT;
                }
            }
        }
        // A watched root that vanished must be re-added when it comes back.
        self.watched.retain(|(d, _)| d.is_dir());
        all
    }
}
