//! Change notification: inotify, read in batches by one thread, with
//! polling as the fallback and the safety net.
//!
//! Directories are watched (not files), so files created later are seen and
//! a rename keeps being followed. Events only say "look here soon"; the
//! tailer's own stat/fingerprint logic decides what happened, so a missed or
//! coalesced event costs latency (until the next poll), never data.
//!
//! **Batching.** An application that writes each line on its own makes one
//! `IN_MODIFY` per line — thousands a second. The reader thread
//! (`logship-watch`) waits for the first event, reads everything queued,
//! sends each changed path once (with "structural" set if any of its events
//! was a create, delete or rename), and then sleeps [`COALESCE`] before it
//! reads again. Meanwhile the kernel queues the next events and merges
//! repeats of the last one, so a busy file costs one wake-up and one message
//! per [`COALESCE`], not one per write; the first change after a quiet spell
//! is still sent at once. The pipeline gathers changes for longer than that
//! anyway (`GATHER_CHANGES`), so the sleep adds nothing to read latency. (We
//! used `notify` before: its thread woke, allocated a path and sent a
//! message for every single event — a third of the agent's CPU next to a
//! line-by-line writer; see BENCHMARKS.md.)
//!
//! A queue overflow (`IN_Q_OVERFLOW`) or an event from a watch we do not
//! know becomes [`Change::Rescan`]. A recursive root also gets watches on
//! its subdirectories (not through symlinks, as discovery does not follow
//! them either), and on each subdirectory created or moved in later; the
//! structural change that reports it makes the pipeline rescan, which finds
//! files written there before its watch existed. A watched directory that
//! goes away (`IN_IGNORED`) is forgotten, so the next [`Watcher::ensure`]
//! watches it again once it is back.
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

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchMask, Watches};

use crate::ops::metrics::metrics;

/// What the watcher tells the pipeline.
#[derive(Debug)]
pub enum Change {
    /// Something happened to this path (write, create, rename, remove);
    /// `true` when it may have appeared, gone or been renamed.
    Path(PathBuf, bool),
    /// The backend lost events (queue overflow): rescan everything.
    Rescan,
    /// Not from the watcher: event-stream lines were queued while the
    /// pipeline may be waiting (`source::stream::Sink`).
    Wake,
}

pub struct Watcher {
    inner: Option<Backend>,
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
/// How long the reader thread lets events queue up after a batch.
pub const COALESCE: Duration = Duration::from_millis(20);

/// What is watched in each directory: content changes, and every way a
/// name can appear or go. (Not opens and closes: our own reads would
/// report themselves.)
const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// Events after which a name may have appeared, gone or moved.
const STRUCTURAL: EventMask = EventMask::CREATE
    .union(EventMask::DELETE)
    .union(EventMask::MOVED_FROM)
    .union(EventMask::MOVED_TO)
    .union(EventMask::DELETE_SELF)
    .union(EventMask::MOVE_SELF);

/// How deep below a recursive root subdirectories are watched.
const MAX_DEPTH: usize = 32;

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

/// The directories being watched, by watch descriptor. Shared by the
/// pipeline thread (which adds roots) and the reader thread (which adds
/// subdirectories and forgets directories that went away).
#[derive(Default)]
struct Dirs {
    by_wd: HashMap<i32, Dir>,
}

struct Dir {
    path: PathBuf,
    /// Device and inode when watched: a directory removed and made again
    /// under the same name is another one.
    id: (u64, u64),
    /// Subdirectories created here get watches too.
    recursive: bool,
}

impl Dirs {
    /// Watch `dir` and, if `recursive`, the directories below it. A
    /// subdirectory that vanished meanwhile is skipped; any other failure
    /// (the watch limit) is returned, with the watches made so far kept.
    fn add_tree(
        &mut self,
        watches: &mut Watches,
        dir: &Path,
        recursive: bool,
        depth: usize,
    ) -> io::Result<()> {
        if let Some(n) = test_watch_limit() {
            if self.by_wd.len() >= n {
                return Err(io::Error::other(
                    "inotify watch limit reached (simulated: LOGSHIP_TEST_INOTIFY_WATCH_LIMIT)",
                ));
            }
        }
        let wd = watches.add(dir, MASK)?.get_watch_descriptor_id();
        let id = dir_id(dir)?;
        let entry = self.by_wd.entry(wd).or_insert_with(|| Dir {
            path: dir.to_path_buf(),
            id,
            recursive,
        });
        // The same directory reached again (as a root and below another
        // root): it keeps its first path and gains recursion if asked.
        entry.recursive |= recursive;
        if !recursive || depth == 0 {
            return Ok(());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for e in entries.flatten() {
            // `file_type` does not follow symlinks: no loops.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                match self.add_tree(watches, &e.path(), true, depth - 1) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// Whether `dir` itself is watched, recursively if `recursive`: the
    /// directory there now, not one that was removed and whose watch is
    /// not yet reported gone.
    fn covers(&self, dir: &Path, recursive: bool) -> bool {
        let Ok(id) = dir_id(dir) else {
            return false;
        };
        self.by_wd
            .values()
            .any(|d| d.path == dir && d.id == id && (d.recursive || !recursive))
    }
}

fn dir_id(dir: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir)?;
    Ok((m.dev(), m.ino()))
}

/// The inotify instance and its reader thread.
struct Backend {
    watches: Watches,
    dirs: Arc<Mutex<Dirs>>,
    /// Dropping it hangs up the pipe the reader also waits on: it stops.
    stop: Option<io::PipeWriter>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(tx: mpsc::Sender<Change>) -> io::Result<Backend> {
        let inotify = Inotify::init()?;
        let watches = inotify.watches();
        let dirs = Arc::new(Mutex::new(Dirs::default()));
        let (stop_rx, stop_tx) = io::pipe()?;
        let reader = Reader {
            inotify,
            watches: watches.clone(),
            dirs: dirs.clone(),
            tx,
            pending: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("logship-watch".into())
            .spawn(move || reader.run(stop_rx))?;
        Ok(Backend {
            watches,
            dirs,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(dirs: &Mutex<Dirs>) -> MutexGuard<'_, Dirs> {
    // A panic while holding the lock leaves a map that is still whole.
    dirs.lock().unwrap_or_else(|p| p.into_inner())
}

/// The reader thread's state.
struct Reader {
    inotify: Inotify,
    watches: Watches,
    dirs: Arc<Mutex<Dirs>>,
    tx: mpsc::Sender<Change>,
    /// This batch's changes: (watch, name) → structural. Kept for its
    /// allocation.
    pending: HashMap<(i32, Option<OsString>), bool>,
}

/// What waiting for events ended with.
enum Wait {
    Events,
    Stop,
}

impl Reader {
    fn run(mut self, stop: io::PipeReader) {
        // Room for a few hundred events per read (16 bytes + name each);
        // `batch` reads until the queue is empty.
        let mut buf = [0u8; 8 * 1024];
        loop {
            match self.wait(&stop) {
                Wait::Stop => return,
                Wait::Events => {}
            }
            if !self.batch(&mut buf) {
                return;
            }
            std::thread::sleep(COALESCE);
        }
    }

    /// Block until the inotify descriptor is readable or the pipe is hung up.
    fn wait(&self, stop: &io::PipeReader) -> Wait {
        let mut fds = [
            libc::pollfd {
                fd: self.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            // SAFETY: `fds` is a valid array of two pollfd for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // poll itself failing leaves nothing to wait with: the
                // 1 s poll of every file takes over.
                tracing::warn!(error = %io::Error::last_os_error(), "inotify reader stopped; files are polled every second");
                return Wait::Stop;
            }
            if fds[1].revents != 0 {
                return Wait::Stop;
            }
            if fds[0].revents != 0 {
                return Wait::Events;
            }
        }
    }

    /// Read everything queued and send each changed path once. Returns
    /// `false` when the pipeline is gone.
    fn batch(&mut self, buf: &mut [u8]) -> bool {
        let mut rescan = false;
        let mut new_dirs: Vec<PathBuf> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        {
            let mut dirs = lock(&self.dirs);
            loop {
                let events = match self.inotify.read_events(buf) {
                    Ok(events) => events,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "reading inotify events failed; rescanning");
                        rescan = true;
                        break;
                    }
                };
                let mut any = false;
                for ev in events {
                    any = true;
                    if ev.mask.contains(EventMask::Q_OVERFLOW) {
                        rescan = true;
                        continue;
                    }
                    let wd = ev.wd.get_watch_descriptor_id();
                    if ev.mask.contains(EventMask::IGNORED) {
                        // The directory went away (or was unmounted).
                        if let Some(d) = dirs.by_wd.remove(&wd) {
                            changes.push(Change::Path(d.path, true));
                        }
                        continue;
                    }
                    if ev.mask.contains(EventMask::MOVE_SELF) && ev.name.is_none() {
                        // A watch follows its directory to the new name,
                        // but we know it by the old one: forget it. Its
                        // parent's MOVED_TO, or the next `ensure`, watches
                        // it again under the right name.
                        if let Some(d) = dirs.by_wd.remove(&wd) {
                            let _ = self.watches.remove(ev.wd.clone());
                            changes.push(Change::Path(d.path, true));
                        }
                        continue;
                    }
                    let Some(dir) = dirs.by_wd.get(&wd) else {
                        rescan = true;
                        continue;
                    };
                    let structural = ev.mask.intersects(STRUCTURAL);
                    if dir.recursive
                        && ev.mask.contains(EventMask::ISDIR)
                        && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                    {
                        if let Some(name) = ev.name {
                            new_dirs.push(dir.path.join(name));
                        }
                    }
                    let key = (wd, ev.name.map(|n| n.to_os_string()));
                    *self.pending.entry(key).or_insert(false) |= structural;
                }
                if !any {
                    break;
                }
            }
            for ((wd, name), structural) in self.pending.drain() {
                // Forgotten within this batch (gone after its events): its
                // change was sent already.
                let Some(dir) = dirs.by_wd.get(&wd) else {
                    continue;
                };
                let path = match name {
                    Some(n) => dir.path.join(n),
                    None => dir.path.clone(),
                };
                changes.push(Change::Path(path, structural));
            }
            for d in &new_dirs {
                if let Err(e) = dirs.add_tree(&mut self.watches, d, true, MAX_DEPTH) {
                    if e.kind() != io::ErrorKind::NotFound {
                        // Its files are still found by the 2 s rescan and
                        // read on the 1 s poll.
                        metrics().watch_fallbacks.inc();
                        tracing::debug!(dir = %d.display(), error = %e, "cannot watch new directory");
                    }
                }
            }
        }
        if rescan {
            changes.push(Change::Rescan);
        }
        // The receiver is gone only when the agent is stopping.
        changes.into_iter().all(|c| self.tx.send(c).is_ok())
    }
}

impl Watcher {
    /// Start a watcher sending to `tx`. Falls back to polling (and says so)
    /// when inotify cannot be initialised.
    pub fn new(tx: mpsc::Sender<Change>) -> Watcher {
        match Backend::start(tx) {
            Ok(b) => Watcher {
                inner: Some(b),
                poll_interval: POLL_WITH_INOTIFY,
                polled: Vec::new(),
                warned: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable (fs.inotify.max_user_instances reached?); polling files every {POLL_WITHOUT:?} instead");
                metrics().watch_fallbacks.inc();
                Watcher {
                    inner: None,
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
        let Some(b) = self.inner.as_mut() else {
            // Everything is polled, at the short interval already.
            return false;
        };
        let mut all = true;
        for (dir, recursive) in roots {
            let result = {
                let mut dirs = lock(&b.dirs);
                // A polled root may be watched in part (the limit was hit
                // below it): it is tried again.
                if dirs.covers(dir, *recursive) && !self.polled.contains(dir) {
                    continue;
                }
                if !dir.is_dir() {
                    all = false;
                    continue;
                }
                dirs.add_tree(&mut b.watches, dir, *recursive, MAX_DEPTH)
            };
            match result {
                Ok(()) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::time::Instant;

    /// Changes received until `want` says stop (or 20 s pass).
    fn until(rx: &mpsc::Receiver<Change>, mut want: impl FnMut(&Change) -> bool) -> Vec<Change> {
        let end = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(c) => {
                    let done = want(&c);
                    got.push(c);
                    if done {
                        return got;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("the change did not come; got {got:?}");
    }

    fn is_path(c: &Change, p: &Path) -> bool {
        matches!(c, Change::Path(q, _) if q == p)
    }

    #[test]
    fn a_line_by_line_writer_costs_few_messages_and_names_are_structural() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut w = Watcher::new(tx);
        assert!(w.ensure(&[(dir.path().to_path_buf(), false)]));
        let file = dir.path().join("app.log");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        // The creation is structural.
        until(&rx, |c| matches!(c, Change::Path(p, true) if *p == file));
        for i in 0..2000 {
            writeln!(f, "line {i}").unwrap();
        }
        let marker = dir.path().join("marker");
        fs::write(&marker, b"x").unwrap();
        // One batch sends its paths in any order: wait for both.
        let (mut wrote, mut marked) = (false, false);
        let got = until(&rx, |c| {
            wrote |= is_path(c, &file);
            marked |= is_path(c, &marker);
            wrote && marked
        });
        let writes = got.iter().filter(|c| is_path(c, &file)).count();
        // Each batch sends a path once; 2,000 writes are a few batches.
        assert!(writes < 200, "{writes} messages for 2,000 writes");
        assert!(got
            .iter()
            .all(|c| matches!(c, Change::Path(p, false) if *p == file) || is_path(c, &marker)));
        // A rename is structural for both names.
        let moved = dir.path().join("app.log.1");
        fs::rename(&file, &moved).unwrap();
        let (mut from, mut to) = (false, false);
        until(&rx, |c| {
            from |= matches!(c, Change::Path(p, true) if *p == file);
            to |= matches!(c, Change::Path(p, true) if *p == moved);
            from && to
        });
    }

    #[test]
    fn recursive_roots_watch_new_subdirectories_and_a_recreated_root_again() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path().join("logs");
        fs::create_dir_all(top.join("old/deep")).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut w = Watcher::new(tx);
        assert!(w.ensure(&[(top.clone(), true)]));
        // A subdirectory that was there at the start.
        let deep = top.join("old/deep/a.log");
        fs::write(&deep, b"a\n").unwrap();
        until(&rx, |c| is_path(c, &deep));
        // One made later: its creation is structural, and it is watched.
        let sub = top.join("new");
        fs::create_dir(&sub).unwrap();
        until(&rx, |c| matches!(c, Change::Path(p, true) if *p == sub));
        let f = sub.join("b.log");
        fs::write(&f, b"b\n").unwrap();
        until(&rx, |c| is_path(c, &f));
        // A renamed subdirectory is known by its new name.
        let renamed = top.join("renamed");
        fs::rename(&sub, &renamed).unwrap();
        until(&rx, |c| matches!(c, Change::Path(p, true) if *p == renamed));
        let g = renamed.join("c.log");
        fs::write(&g, b"c\n").unwrap();
        until(&rx, |c| is_path(c, &g));
        // The root goes away and comes back: `ensure` watches it again.
        fs::remove_dir_all(&top).unwrap();
        until(&rx, |c| matches!(c, Change::Path(p, true) if *p == top));
        fs::create_dir(&top).unwrap();
        assert!(w.ensure(&[(top.clone(), true)]));
        let h = top.join("d.log");
        fs::write(&h, b"d\n").unwrap();
        until(&rx, |c| is_path(c, &h));
        // Dropping the watcher stops its thread (the drop joins it).
        drop(w);
    }
}
