//! The set of tailed files: discovery, identity across rotations, reading.
//!
//! Invariants the rest of the agent relies on:
//! - every byte of a followed file is handed out at most once: a file's
//!   offset only moves forward past lines that were emitted, and a copy of
//!   a file (copytruncate) is not read while the original lives — it takes
//!   over from the original's offset when the original is truncated or gone;
//! - memory is bounded by one read chunk plus per-file bookkeeping.
//!
//! How a file found on disk is recognised, in order:
//! 1. device + inode of a file we follow (or followed before a restart), with
//!    an unchanged head fingerprint: the same file, perhaps renamed. A
//!    checkpointed file with no head yet (nothing read) proves nothing about
//!    a reused inode and is treated as new;
//! 2. a new inode whose name is a rotated name (longer: `app.log` ->
//!    `app.log.1`, `app.1.log`, `app-20260101.log`) of a followed file's
//!    current or previous name, or of a recently truncated file's, and whose
//!    head equals that file's recorded head — or, if the original is intact,
//!    its current head (a copy shorter than the recorded head, or of a file
//!    empty when last read): a copy, continued from that offset;
//! 3. otherwise a new file, read from the beginning (or from its end at the
//!    agent's very first start with `read_from = "end"`).
//!
//! A file that is empty when found is followed but judged (steps 2 and 3)
//! only once it has content: a copytruncate copy is created empty and
//! filled after, and judged while empty it could only pass for a new file
//! and be read a second time.
//!
//! A scan settles every known file (step 1, or retirement) before it looks
//! at new ones, and adopts new ones shortest name first, so an original is
//! always followed or retired before its copies are judged.
//!
//! Descriptors are bounded (issue #16): at most [`TailPolicy::max_open`]
//! handles are open at once (a share of `RLIMIT_NOFILE`, see [`fds`]). A
//! followed file whose handle is closed stays followed — position, head,
//! stream state, shadows — and is reopened by identity (`file` module doc)
//! when a change event or the poll says it may have grown. Handles close
//! - when idle: read to the end, no partial line waiting, still under the
//!   globs, untouched for [`TailPolicy::close_idle`] and with a ctime old
//!   enough that a `stat` can vouch for it while closed;
//! - when a file must be opened and the cap is reached: the least recently
//!   active handles, fully read ones first. Files with unread bytes or a
//!   partial line are closed only if there are not enough of those: their
//!   bytes wait in the file, and waiting on them would let one slow file
//!   (a partial line waits a second) or a backlog larger than the cap stop
//!   every other file from being read.
//!
//! Never closed: a file that left the globs (deleted, or renamed out of
//! them) — its rest can only be drained through the open handle. If every
//! handle is such a file, others wait until those are drained and reaped.
//! A copy that shadows an original is closed like any file, also once it
//! left the globs: what it holds beyond the original's offset the original
//! holds too, and a deleted old copy would otherwise keep its handle for as
//! long as the original lives.
//!
//! What a closed handle loses, and how each case is met:
//! - renamed while closed: the scan walks the globs and finds the inode
//!   under its new name (step 1); a reopen that finds another file at the
//!   old path looks in the same directory first, so a rotation is followed
//!   at once, also to a name outside the globs (then drained and reaped);
//! - copied (copytruncate) or rotated while closed: recognised as above,
//!   the original's current head read through a short-lived handle;
//! - deleted while closed: lines written after the close and not read are
//!   lost (the window is from the write to the reopen its change event
//!   triggers: milliseconds with inotify, up to the poll interval without).
//!   The scan that misses the file counts it
//!   (`logship_closed_files_vanished_total`), hands its place to a copy if
//!   one shadows it, and remembers its head for copies found later;
//! - its inode reused by a new file: told apart by the head, as after a
//!   restart (a new file of the same size and head is not).
//!
//! Running out of descriptors (EMFILE/ENFILE) anywhere here is a reason to
//! wait, never a verdict on a file: a restore stays pending, an adoption
//! waits for the next scan, a reopen for the next look, and a scan that
//! could not list a directory or settle a known file neither retires
//! anything nor adopts new files. The tailer closes a batch of handles and
//! lowers its cap to what it then holds (until the tailer is rebuilt by a
//! reload or restart), so the rest of the process gets descriptors back.
//!
//! `tests/model/tailer_model.rs` checks these rules against a model of the files
//! under random rotations, truncations, deletions and restarts, with caps of
//! one and two handles as well as the default.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::discover::{MatcherError, SourceMatcher};
use super::fds;
use super::file::{out_of_fds, FileKey, FileState, Head, Probe, TailedFile, FP_LEN};
use super::lines::{self, LineRef};
use super::template::{PathTemplate, TemplateError};
use crate::config::{ReadFrom, SourceConfig};
use crate::event::IdField;
use crate::ops::metrics::metrics;

/// Bytes read from a file per chunk (at least 4x the longest line).
pub const CHUNK: usize = 1024 * 1024;
/// Bytes read from one file before moving on to the next.
pub const READ_BUDGET: usize = 8 * CHUNK;
/// Deepest directory level searched below a recursive watch root.
const MAX_DEPTH: usize = 16;
/// Truncated files remembered so a copy made before truncation is recognised.
const MAX_RETIRED: usize = 256;

/// A file that was truncated or vanished, remembered for copy detection
/// (only files with a head are: without one, no copy can be recognised).
#[derive(Clone, Debug, PartialEq)]
pub struct Retired {
    pub source: String,
    pub path: PathBuf,
    /// Its name before its last rename, if it was renamed while followed:
    /// a copy made under that name (copytruncate, then a rename rotation
    /// before the truncation was seen) is named as a rotation of it.
    pub prev_path: Option<PathBuf>,
    pub head: Head,
    pub offset: u64,
    pub skipping: bool,
}

/// Why a tailer cannot be built from the sources' config.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TailerError {
    #[error("source {source_name:?}: {error}")]
    Matcher {
        source_name: String,
        #[source]
        error: MatcherError,
    },
    #[error("source {source_name:?}: {error}")]
    Template {
        source_name: String,
        #[source]
        error: TemplateError,
    },
}

/// Timing policy of the tailer.
#[derive(Clone, Debug)]
pub struct TailPolicy {
    /// Emit an incomplete last line after it has waited this long.
    pub partial_line_timeout: Duration,
    /// Stop following a file that was deleted or renamed out of the globs
    /// once it is drained and has been idle this long.
    pub drain_idle: Duration,
    /// Most file handles open at once (module doc); by default a share of
    /// the process's `RLIMIT_NOFILE` ([`fds::budget`]).
    pub max_open: usize,
    /// Close the handle of a fully read file untouched this long.
    pub close_idle: Duration,
}

impl Default for TailPolicy {
    fn default() -> Self {
        TailPolicy {
            partial_line_timeout: Duration::from_secs(1),
            drain_idle: Duration::from_secs(5),
            max_open: fds::budget(),
            // Reopening costs an open, a stat and a 1 KiB read: cheap, but
            // a file written every few seconds is better left open.
            close_idle: Duration::from_secs(30),
        }
    }
}

/// Why a handle was closed (the label of `logship_files_closed_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Fully read and untouched for [`TailPolicy::close_idle`].
    Idle,
    /// Room for another file under [`TailPolicy::max_open`].
    Limit,
}

impl CloseReason {
    pub const ALL: [CloseReason; 2] = [CloseReason::Idle, CloseReason::Limit];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::Limit => "limit",
        }
    }
}

/// What became of a checkpointed state offered a file on disk.
enum Restored {
    /// Followed again.
    Yes,
    /// Not the checkpointed file: the caller adopts it as new.
    No,
    /// Out of descriptors: the state waits for the next scan.
    Later(FileState),
}

/// What became of a file offered for adoption.
#[derive(PartialEq, Eq)]
enum Adopted {
    /// Followed (or, while empty, left for a later scan).
    Done,
    /// Out of descriptors: no more adoptions in this scan.
    OutOfFds,
}

struct SourceSpec {
    name: String,
    matcher: SourceMatcher,
    template: Option<PathTemplate>,
    read_from: ReadFrom,
}

/// One line handed to the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub truncated: bool,
    /// Offset of the line's first byte in its file (or stream).
    pub at: u64,
}

pub struct Tailer {
    sources: Vec<SourceSpec>,
    files: HashMap<FileKey, TailedFile>,
    /// Followed files found empty and not yet placed (see `adopt`).
    undecided: HashSet<FileKey>,
    /// State restored from a checkpoint, not yet matched to a file on disk.
    pending: HashMap<FileKey, FileState>,
    retired: VecDeque<Retired>,
    /// No checkpoint existed: `read_from = "end"` applies to files found now.
    first_start: bool,
    policy: TailPolicy,
    refs: Vec<LineRef>,
    /// Handles open now (files with `is_open()`).
    open: usize,
    /// Handles allowed: `policy.max_open`, lowered after EMFILE.
    cap: usize,
    /// The last eviction found nothing to close (every handle drains a
    /// file that left the globs); cleared when that may have changed.
    no_victim: bool,
    /// The caller's clock at its last call (reads and reaps take one;
    /// scans do not).
    clock: Instant,
    /// Running out of descriptors was logged at warn level once.
    fd_warned: bool,
}

impl Tailer {
    pub fn new(
        sources: &[SourceConfig],
        restored: Vec<FileState>,
        retired: Vec<Retired>,
        first_start: bool,
        policy: TailPolicy,
    ) -> Result<Tailer, TailerError> {
        let specs = sources
            .iter()
            .map(|s| {
                let source_name = s.name.get_ref().clone();
                Ok(SourceSpec {
                    matcher: SourceMatcher::new(s).map_err(|error| TailerError::Matcher {
                        source_name: source_name.clone(),
                        error,
                    })?,
                    template: s
                        .path_template
                        .as_ref()
                        .map(|t| PathTemplate::parse(t.get_ref()))
                        .transpose()
                        .map_err(|error| TailerError::Template {
                            source_name: source_name.clone(),
                            error,
                        })?,
                    name: source_name,
                    read_from: s.read_from,
                })
            })
            .collect::<Result<Vec<_>, TailerError>>()?;
        Ok(Tailer {
            sources: specs,
            files: HashMap::new(),
            undecided: HashSet::new(),
            pending: restored.into_iter().map(|s| (s.key(), s)).collect(),
            retired: retired.into(),
            first_start,
            cap: policy.max_open.max(1),
            policy,
            refs: Vec::new(),
            open: 0,
            no_victim: false,
            clock: Instant::now(),
            fd_warned: false,
        })
    }

    /// Whether the followed file `key` holds an open handle (`None`: not
    /// followed).
    pub fn is_open(&self, key: FileKey) -> Option<bool> {
        self.files.get(&key).map(|f| f.is_open())
    }

    /// Handles open now.
    pub fn open_handles(&self) -> usize {
        self.open
    }

    /// Whether every open handle drains a file that left the globs: the
    /// one state in which a file waits for a handle (module doc).
    pub fn all_handles_draining(&self) -> bool {
        self.files
            .values()
            .filter(|f| f.is_open())
            .all(|f| f.must_drain())
    }

    fn set_gauges(&self) {
        metrics().files_watched.set(self.files.len() as i64);
        metrics().open_files.set(self.open as i64);
    }

    fn close(&mut self, key: FileKey, reason: CloseReason) {
        if let Some(f) = self.files.get_mut(&key) {
            if f.is_open() {
                f.close();
                self.open -= 1;
                metrics().files_closed(reason).inc();
            }
        }
    }

    /// Stop following `key` (its handle, if open, closes with it).
    fn remove(&mut self, key: FileKey) -> Option<TailedFile> {
        self.undecided.remove(&key);
        let f = self.files.remove(&key)?;
        if f.is_open() {
            self.open -= 1;
        }
        self.no_victim = false;
        Some(f)
    }

    /// Follow `f`, keeping its handle open if there is room under the cap,
    /// else closing it (it is reopened when there is).
    fn insert(&mut self, mut f: TailedFile) {
        if f.is_open() {
            if self.make_room() {
                self.open += 1;
                self.no_victim = false;
            } else {
                f.close();
                metrics().files_closed(CloseReason::Limit).inc();
            }
        }
        self.files.insert(f.key(), f);
    }

    /// Room for one more handle under the cap, closing others if needed
    /// (module doc for the order). `false`: every handle drains a file
    /// that left the globs; the caller waits.
    fn make_room(&mut self) -> bool {
        if self.open < self.cap {
            return true;
        }
        if self.no_victim {
            return false;
        }
        // Files that left the globs and are drained: reap's rule, now.
        let now = self.clock;
        let drained: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| f.is_open() && self.reapable(f, now))
            .map(|f| f.key())
            .collect();
        for key in drained {
            self.drop_drained(key);
        }
        if self.open < self.cap {
            return true;
        }
        // Fully read first, then least recently active; a batch at a
        // time, so a burst of opens does not scan all files for each.
        let mut victims: Vec<(bool, Instant, FileKey)> = self
            .files
            .values()
            .filter(|f| f.is_open() && !f.must_drain())
            .map(|f| {
                let unread = f.st.shadow_of.is_none()
                    && (f.partial_since.is_some() || f.st.offset < f.last_size);
                (unread, f.last_activity, f.key())
            })
            .collect();
        if victims.is_empty() {
            self.no_victim = true;
            return false;
        }
        let batch = (self.cap / 8).clamp(1, victims.len());
        victims.select_nth_unstable(batch - 1);
        for &(_, _, key) in &victims[..batch] {
            self.close(key, CloseReason::Limit);
        }
        self.set_gauges();
        true
    }

    /// An open failed for lack of descriptors: give some back to the rest
    /// of the process, and keep fewer from now on (module doc).
    fn fds_exhausted(&mut self, e: &io::Error, path: &Path) {
        metrics().fd_exhausted.inc();
        let floor = fds::MIN_OPEN.min(self.policy.max_open.max(1));
        // At the cap, make_room closes a batch; the cap is then what is left.
        self.cap = self.open.max(floor);
        if self.open >= self.cap {
            let _ = self.make_room();
        }
        self.cap = self.open.max(floor);
        if !self.fd_warned {
            self.fd_warned = true;
            tracing::warn!(path = %path.display(), error = %e, open = self.open, cap = self.cap, "out of file descriptors; closed idle handles and lowered the cap of open files (nothing is skipped: the file is retried). Raise the open-files limit (LimitNOFILE) if this repeats");
        } else {
            tracing::debug!(path = %path.display(), error = %e, cap = self.cap, "out of file descriptors; retrying later");
        }
        self.set_gauges();
    }

    /// Directories to watch, with whether to watch below them.
    pub fn watch_roots(&self) -> Vec<(PathBuf, bool)> {
        let mut roots: Vec<(PathBuf, bool)> = Vec::new();
        for s in &self.sources {
            for r in s.matcher.roots() {
                match roots.iter_mut().find(|(d, _)| *d == r.dir) {
                    Some((_, rec)) => *rec |= r.recursive,
                    None => roots.push((r.dir.clone(), r.recursive)),
                }
            }
        }
        roots
    }

    /// Checkpoint view: every followed file's state, and retired heads.
    pub fn states(&self) -> (Vec<FileState>, Vec<Retired>) {
        let mut files: Vec<FileState> = self.files.values().map(|f| f.st.clone()).collect();
        // Restored files not seen yet keep their place until the first scan.
        files.extend(self.pending.values().cloned());
        files.sort_by(|a, b| a.path.cmp(&b.path));
        (files, self.retired.iter().cloned().collect())
    }

    /// Find files on disk and reconcile them with what is followed.
    pub fn scan(&mut self) {
        self.no_victim = false;
        let mut found: Vec<(usize, PathBuf, FileKey, u64)> = Vec::new();
        let mut claimed = HashSet::new();
        // A directory that could not be listed for lack of descriptors
        // hides files that are there: nothing unfound is taken for gone.
        let mut complete = true;
        for (si, spec) in self.sources.iter().enumerate() {
            for root in spec.matcher.roots() {
                complete &= walk(
                    &root.dir,
                    if root.recursive { MAX_DEPTH } else { 0 },
                    &mut |path, m| {
                        if spec.matcher.matches(path) && claimed.insert((m.dev(), m.ino())) {
                            found.push((si, path.to_path_buf(), (m.dev(), m.ino()), m.len()));
                        }
                    },
                );
            }
        }
        // Checkpointed states that must wait for descriptors.
        let mut later: Vec<FileState> = Vec::new();
        // Paths whose copies must not be judged in this scan (their
        // original's state waits for descriptors).
        let mut blocked: Vec<PathBuf> = Vec::new();
        // Pass 1: files we know (followed now, or before a restart).
        let mut new_files = Vec::new();
        for (si, path, key, _) in found {
            if let Some(f) = self.files.get_mut(&key) {
                if f.st.path != path {
                    f.prev_path = Some(std::mem::replace(&mut f.st.path, path));
                    f.path_ids = path_ids(self.sources[f.source_idx].template.as_ref(), &f.st.path);
                }
                f.matched = true;
            } else if let Some(st) = self.pending.remove(&key) {
                // Not the checkpointed file after all: adopted in pass 2,
                // once every checkpointed state it may be a copy of is
                // followed or retired.
                match self.restore(si, &path, st) {
                    Restored::Yes => {}
                    Restored::No => new_files.push((si, path)),
                    Restored::Later(st) => later.push(st),
                }
            } else {
                new_files.push((si, path));
            }
        }
        // Restored files not found by the globs: renamed out of them while
        // the agent was down? Look for the inode beside the old path.
        let unfound: Vec<FileState> = self.pending.drain().map(|(_, s)| s).collect();
        for st in unfound {
            if !complete {
                later.push(st);
                continue;
            }
            let si = self.sources.iter().position(|s| s.name == st.source);
            match (si, find_inode_near(&st)) {
                (Some(si), Ok(Some(path))) => {
                    match self.restore(si, &path, st) {
                        Restored::Yes => {}
                        Restored::No => {
                            if self.adopt(si, &path) == Adopted::OutOfFds {
                                // Adopted as new at a later scan, as here;
                                // its copies wait with it.
                                blocked.push(path.clone());
                            }
                        }
                        Restored::Later(st) => later.push(st),
                    }
                    if let Some(f) = self.files.values_mut().find(|f| f.st.path == path) {
                        f.matched = false;
                    }
                }
                (Some(_), Err(e)) if out_of_fds(&e) => later.push(st),
                _ => self.retire(&st, None),
            }
        }
        blocked.extend(later.iter().map(|st| st.path.clone()));
        for st in later {
            self.pending.insert(st.key(), st);
        }
        if complete {
            for f in self.files.values_mut() {
                if !claimed.contains(&f.key()) {
                    f.matched = false;
                }
            }
            self.find_closed_unmatched();
        }
        // Pass 2: files never seen before. Shorter names first: a rotated
        // name is longer than its original's, so when both a file and its
        // copy are new the original is adopted first and the copy becomes
        // its shadow, instead of both being read from the start.
        // A file that may be a copy of one whose state waits (for
        // descriptors) waits too: judged now, it would be read again.
        // Copies sit beside their originals under a rotated name, so only
        // those names wait (states unfound in a scan that could not list
        // every directory are among the waiting).
        new_files.sort_by(|(_, a), (_, b)| {
            let len = |p: &PathBuf| p.file_name().map_or(0, |n| n.len());
            len(a).cmp(&len(b)).then_with(|| a.cmp(b))
        });
        let mut settled = complete && blocked.is_empty();
        for (si, path) in new_files {
            if blocked
                .iter()
                .any(|b| *b == path || is_rotated_name(b, &path))
            {
                continue;
            }
            if self.adopt(si, &path) == Adopted::OutOfFds {
                blocked.push(path);
                settled = false;
            }
        }
        // `read_from = "end"` applies to every file present at the first
        // start, also those adopted a scan later for lack of descriptors.
        if settled {
            self.first_start = false;
        }
        self.set_gauges();
    }

    /// Closed files the globs no longer match: renamed beside their old
    /// name (followed there, to be drained and reaped), or gone — deleted
    /// or moved out of reach while closed (module doc).
    fn find_closed_unmatched(&mut self) {
        let lost: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| !f.matched && !f.is_open())
            .map(|f| f.key())
            .collect();
        for key in lost {
            let Some(f) = self.files.get_mut(&key) else {
                continue;
            };
            match find_inode_near(&f.st) {
                Ok(Some(path)) => {
                    if f.st.path != path {
                        f.prev_path = Some(std::mem::replace(&mut f.st.path, path));
                    }
                }
                Ok(None) => {
                    // A copy's lines are its original's: only a file read
                    // for itself can have lost some.
                    if f.st.shadow_of.is_none() {
                        tracing::info!(path = %f.st.path.display(), "a file whose handle was closed is gone (deleted or moved out of reach); lines written to it after its close, if any, were not read");
                        metrics().closed_files_vanished.inc();
                    }
                    if let Some(f) = self.remove(key) {
                        if !self.hand_over(key, &f.st) {
                            self.retire(&f.st, f.prev_path.as_deref());
                        }
                    }
                }
                // Out of descriptors, say: looked at again next scan.
                Err(_) => {}
            }
        }
    }

    /// Re-attach restored state to a file found on disk.
    fn restore(&mut self, si: usize, path: &Path, st: FileState) -> Restored {
        let Some(head) = st.head else {
            // Nothing was read and no head recorded: the inode may have been
            // freed and reused while we were down, so nothing says this is
            // the same file. Adopting it reads it from the start all the
            // same, and checks whether it is a copy of a followed file.
            return Restored::No;
        };
        let mut f = match TailedFile::open(path, &st.source, si) {
            Ok(f) => f,
            // Out of file descriptors: the state stays pending (and in the
            // checkpoint) for the next scan. Retiring it would read the
            // file again from the start.
            Err(e) if out_of_fds(&e) => {
                self.fds_exhausted(&e, path);
                return Restored::Later(st);
            }
            Err(_) => {
                self.retire(&st, None);
                return Restored::Yes;
            }
        };
        let same_head = match f.head_hash(head.len) {
            Ok(h) => f.last_size >= st.offset && h == Some(head.hash),
            Err(e) if out_of_fds(&e) => {
                self.fds_exhausted(&e, path);
                return Restored::Later(st);
            }
            Err(_) => false,
        };
        if !same_head {
            // Truncated or rewritten while we were down: a new stream.
            self.retire(&st, None);
            return Restored::No;
        }
        let mut st = st;
        if st.path != path {
            f.prev_path = Some(std::mem::replace(&mut st.path, path.to_path_buf()));
        }
        f.st = st;
        f.path_ids = path_ids(self.sources[si].template.as_ref(), path);
        self.insert(f);
        Restored::Yes
    }

    fn retire(&mut self, st: &FileState, prev_path: Option<&Path>) {
        let Some(head) = st.head else {
            return;
        };
        self.retired.push_back(Retired {
            source: st.source.clone(),
            path: st.path.clone(),
            prev_path: prev_path.map(Path::to_path_buf),
            head,
            offset: st.offset,
            skipping: st.skipping,
        });
        while self.retired.len() > MAX_RETIRED {
            self.retired.pop_front();
        }
    }

    /// Start following a file never seen before (or whose content was
    /// replaced), deciding where to start reading it.
    fn adopt(&mut self, si: usize, path: &Path) -> Adopted {
        let spec = &self.sources[si];
        let mut f = match TailedFile::open(path, &spec.name, si) {
            Ok(f) => f,
            Err(e) if out_of_fds(&e) => {
                self.fds_exhausted(&e, path);
                return Adopted::OutOfFds;
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open file");
                return Adopted::Done;
            }
        };
        f.path_ids = path_ids(spec.template.as_ref(), path);
        if f.last_size == 0 {
            // Nothing says yet what this file is: copytruncate creates the
            // copy empty and fills it after. It is followed (its handle, if
            // it keeps one, holds lines written before a quick delete) and
            // placed by `place` once it has content.
            self.undecided.insert(f.key());
            self.insert(f);
            return Adopted::Done;
        }
        self.place(f)
    }

    /// Decide where reading `f` (not in `files`) starts: a copy of a
    /// followed or truncated file continues from that file's offset, a new
    /// file starts at 0 (or at its end, at the very first start with
    /// `read_from = "end"`). Then follow it.
    fn place(&mut self, mut f: TailedFile) -> Adopted {
        let spec = &self.sources[f.source_idx];
        let path = f.st.path.clone();
        let path = path.as_path();
        let size = f.last_size;
        let mut heads: HashMap<u64, Option<u64>> = HashMap::new();
        let mut head = |len: u64| {
            *heads
                .entry(len)
                .or_insert_with(|| f.head_hash(len).ok().flatten())
        };
        // A copy of a file we follow (named as a rotation of the original's
        // name, now or before its last rename)? Either it starts with the head we
        // recorded for the original (which may be truncated since: the
        // copytruncate case), or the original is intact and the copy's
        // head equals the original's current one. The second covers copies
        // the recorded head cannot vouch for: shorter than it (taken before
        // the original grew), or of a file that was empty when last read.
        // An original whose handle is closed is read through a short-lived
        // one; if even that cannot be had, the copy waits for a later scan
        // rather than be taken for a new file.
        let n = size.min(FP_LEN);
        let mut original = None;
        let mut fds_out = None;
        let candidates = self.files.values().filter(|a| {
            a.st.source == spec.name
                && a.st.shadow_of.is_none()
                && n > 0
                && (is_rotated_name(&a.st.path, path)
                    || a.prev_path
                        .as_ref()
                        .is_some_and(|p| is_rotated_name(p, path)))
        });
        for a in candidates {
            if a.st
                .head
                .is_some_and(|h| size >= h.len && head(h.len) == Some(h.hash))
            {
                original = Some(a);
                break;
            }
            let Some(copy_head) = head(n) else { continue };
            let intact = match a.head_hash(n) {
                Ok(h) if h == Some(copy_head) => a.head_unchanged(),
                other => other.map(|_| false),
            };
            match intact {
                Ok(true) => {
                    original = Some(a);
                    break;
                }
                Err(e) if out_of_fds(&e) => {
                    fds_out = Some(e);
                    break;
                }
                _ => {}
            }
        }
        if let Some(e) = fds_out {
            self.fds_exhausted(&e, path);
            return Adopted::OutOfFds;
        }
        if let Some(a) = original {
            f.st.shadow_of = Some(a.key());
            f.st.offset = a.st.offset.min(size);
            tracing::info!(path = %path.display(), original = %a.st.path.display(), "recognised a copy of a followed file; continuing from its offset");
        } else if let Some(i) = self.retired.iter().position(|r| {
            r.source == spec.name
                && size >= r.head.len
                && (is_rotated_name(&r.path, path)
                    || r.prev_path
                        .as_ref()
                        .is_some_and(|p| is_rotated_name(p, path)))
                && head(r.head.len) == Some(r.head.hash)
        }) {
            let r = self.retired.remove(i).unwrap_or_else(|| unreachable!());
            f.st.offset = r.offset.min(size);
            f.st.skipping = r.skipping && r.offset <= size;
            tracing::info!(path = %path.display(), "recognised a copy of a truncated file; continuing from its offset");
        } else if self.first_start && spec.read_from == ReadFrom::End {
            f.st.offset = size;
        }
        if let Err(e) = f.refresh_fingerprint(size) {
            tracing::debug!(path = %path.display(), error = %e, "cannot fingerprint");
        }
        self.insert(f);
        Adopted::Done
    }

    /// A followed file, to complete its open records (the pipeline's
    /// timeouts) with its stream state.
    pub fn file_mut(&mut self, key: FileKey) -> Option<&mut TailedFile> {
        self.files.get_mut(&key)
    }

    /// Keys of all followed files.
    pub fn keys(&self) -> Vec<FileKey> {
        self.files.keys().copied().collect()
    }

    /// Path -> key of every followed file, built once per batch of change
    /// events so each event is one lookup rather than a search of all files.
    pub fn path_index(&self) -> HashMap<&Path, FileKey> {
        self.files
            .values()
            .map(|f| (f.st.path.as_path(), f.key()))
            .collect()
    }

    /// Read new lines from one file, calling `emit` for each. Returns bytes
    /// consumed. Handles truncation, idle partial lines, and retirement of
    /// drained files that went away.
    /// At most about `budget` bytes are consumed (at least one line's worth),
    /// so a caller enforcing a disk budget can stop in time.
    pub fn read_file(
        &mut self,
        key: FileKey,
        buf: &mut Vec<u8>,
        now: Instant,
        budget: usize,
        emit: &mut dyn FnMut(&mut TailedFile, Line<'_>),
    ) -> io::Result<usize> {
        let budget = budget.min(READ_BUDGET);
        self.clock = now;
        if self.undecided.contains(&key) {
            let Some(f) = self.files.get(&key) else {
                return Ok(0);
            };
            // A closed handle comes back the usual way (found again if the
            // file was renamed meanwhile; nothing to do if unchanged).
            if !f.is_open() && !self.reopen(key)? {
                return Ok(0);
            }
            let Some(f) = self.files.get(&key) else {
                return Ok(0);
            };
            let size = f.size()?;
            if size == 0 {
                return Ok(0);
            }
            // It has content now: a copy in the making, or a new file.
            self.undecided.remove(&key);
            if let Some(mut f) = self.remove(key) {
                f.last_size = size;
                // Out of descriptors: not followed now, found by the next
                // scan as a file with content and placed then.
                let _ = self.place(f);
            }
        }
        let Some(f) = self.files.get(&key) else {
            return Ok(0);
        };
        if f.st.shadow_of.is_some() {
            return Ok(0);
        }
        let reopened = !f.is_open();
        if reopened && !self.reopen(key)? {
            return Ok(0);
        }
        let f = self.files.get_mut(&key).unwrap_or_else(|| unreachable!());
        let size = f.size()?;
        // The head is checked even when the size did not change: a file
        // truncated and rewritten to exactly its old size between two polls
        // is otherwise taken for unchanged and its new lines never read.
        // Costs one read of at most `FP_LEN` bytes per call.
        if size < f.st.offset || !f.head_unchanged()? {
            if reopened {
                self.replaced(key);
            } else {
                tracing::info!(path = %f.st.path.display(), "file was truncated; reading it from the start");
                self.on_truncated(key);
            }
            return Ok(0);
        }
        let f = self.files.get_mut(&key).unwrap_or_else(|| unreachable!());
        if size != f.last_size {
            f.last_size = size;
            f.last_activity = now;
            f.partial_since = None;
        }
        f.refresh_fingerprint(size)?;
        let mut consumed_total = 0;
        while f.st.offset < size && consumed_total < budget {
            // A smaller read near the budget, but always room for a whole line.
            let cap = (budget - consumed_total).clamp(lines::MAX_LINE + 2, CHUNK);
            // No more than the size seen asks for: the buffer is zeroed up
            // to what is asked, and a live file grows by a few KiB a read.
            // Reading less than `cap` is the end of the file, as below.
            let avail = usize::try_from(size - f.st.offset).unwrap_or(usize::MAX);
            let n = f.read_chunk(buf, cap.min(avail))?;
            if n == 0 {
                break;
            }
            let split = lines::split(&buf[..n], f.st.skipping, &mut self.refs);
            for r in &self.refs {
                if r.truncated {
                    metrics().truncated_lines.inc();
                }
                emit(
                    f,
                    Line {
                        bytes: &buf[r.start..r.end],
                        truncated: r.truncated,
                        at: f.st.offset + r.start as u64,
                    },
                );
            }
            f.st.offset += split.consumed as u64;
            f.st.skipping = split.skipping;
            consumed_total += split.consumed;
            if split.partial > 0 && n < cap {
                // An incomplete last line: wait for its newline a while.
                let since = *f.partial_since.get_or_insert(now);
                if now.duration_since(since) >= self.policy.partial_line_timeout {
                    emit(
                        f,
                        Line {
                            bytes: &buf[split.consumed..n],
                            truncated: false,
                            at: f.st.offset,
                        },
                    );
                    f.st.offset += split.partial as u64;
                    consumed_total += split.partial;
                    f.partial_since = None;
                }
                break;
            }
            if n < cap {
                break;
            }
        }
        if consumed_total > 0 {
            // A file that left the globs may be drained now: reapable,
            // its handle free for another file.
            self.no_victim = false;
            f.last_activity = now;
            // Shadows follow their original's progress.
            let (offset, skipping) = (f.st.offset, f.st.skipping);
            for s in self
                .files
                .values_mut()
                .filter(|s| s.st.shadow_of == Some(key))
            {
                // Never past the copy's end: a checkpointed offset beyond
                // a file's size reads as a truncation at restore.
                let size = s.size().unwrap_or(offset);
                s.st.offset = offset.min(size);
                s.st.skipping = skipping && offset <= size;
            }
        }
        Ok(consumed_total)
    }

    /// Whether `key` has bytes beyond its offset that the last read left
    /// (its budget ran out): the caller should read it again without waiting.
    /// Not a closed file: it waits for a handle, and asking again at once
    /// could spin while every handle drains a file that left the globs.
    pub fn has_more(&self, key: FileKey) -> bool {
        self.files.get(&key).is_some_and(|f| {
            f.is_open()
                && f.st.shadow_of.is_none()
                && f.partial_since.is_none()
                && f.st.offset < f.last_size
        })
    }

    /// Give the closed file `key` a handle again if it may have something
    /// to read. `false`: nothing to read, or not now (renamed out of sight
    /// until the next scan, no room, no descriptors).
    fn reopen(&mut self, key: FileKey) -> io::Result<bool> {
        let Some(f) = self.files.get_mut(&key) else {
            return Ok(false);
        };
        match f.probe() {
            Probe::Unchanged => return Ok(false),
            Probe::Changed => {}
            Probe::Moved => match find_inode_near(&f.st) {
                // Rotations rename within the directory: follow at once
                // (the next scan says whether the globs still match).
                Ok(Some(path)) => {
                    f.prev_path = Some(std::mem::replace(&mut f.st.path, path));
                    f.path_ids = path_ids(self.sources[f.source_idx].template.as_ref(), &f.st.path);
                }
                // Elsewhere under the globs, or gone: the scan decides.
                Ok(None) => return Ok(false),
                Err(e) => {
                    if out_of_fds(&e) {
                        let path = f.st.path.clone();
                        self.fds_exhausted(&e, &path);
                    }
                    return Ok(false);
                }
            },
        }
        if !self.make_room() {
            return Ok(false);
        }
        let Some(f) = self.files.get_mut(&key) else {
            // make_room reaped it (drained and gone).
            return Ok(false);
        };
        match f.reopen() {
            Ok(true) => {
                self.open += 1;
                metrics().files_reopened.inc();
                metrics().open_files.set(self.open as i64);
                Ok(true)
            }
            // Replaced between the look and the open: as for Moved.
            Ok(false) => Ok(false),
            Err(e) if out_of_fds(&e) => {
                let path = f.st.path.clone();
                self.fds_exhausted(&e, &path);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A file reopened after a close is shorter than its offset or has
    /// another head: truncated, or — without a handle nothing held the
    /// inode — deleted and its inode given to a new file, perhaps a copy
    /// of one we follow. Which, only a look as at a file found anew can
    /// tell: the old state ends (its copies take over, or it is retired),
    /// and what the path holds now is adopted, copy detection included.
    fn replaced(&mut self, key: FileKey) {
        let Some(f) = self.remove(key) else {
            return;
        };
        tracing::info!(path = %f.st.path.display(), "a file changed while its handle was closed (truncated, or its inode reused by a new file); judging it again as a file found now");
        if !self.hand_over(key, &f.st) {
            self.retire(&f.st, f.prev_path.as_deref());
        }
        let (si, path) = (f.source_idx, f.st.path.clone());
        drop(f);
        // Out of descriptors: the next scan finds it as a new file.
        let _ = self.adopt(si, &path);
        self.set_gauges();
    }

    fn on_truncated(&mut self, key: FileKey) {
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        let old = f.st.clone();
        let prev = f.prev_path.clone();
        f.reset();
        f.last_size = 0;
        if !self.hand_over(key, &old) {
            self.retire(&old, prev.as_deref());
        }
    }

    /// Let copies of `key` continue from its position; true if one did.
    fn hand_over(&mut self, key: FileKey, old: &FileState) -> bool {
        let mut heir: Option<FileKey> = None;
        let mut shadows: Vec<FileKey> = self
            .files
            .values()
            .filter(|s| s.st.shadow_of == Some(key))
            .map(|s| s.key())
            .collect();
        shadows.sort();
        for sk in shadows {
            if let Some(s) = self.files.get_mut(&sk) {
                match heir {
                    None => {
                        // A copy shorter than the original's offset holds
                        // nothing unread: it ends where it ends.
                        let size = s.size().unwrap_or(old.offset);
                        s.st.shadow_of = None;
                        s.st.offset = old.offset.min(size);
                        s.st.skipping = old.skipping && old.offset <= size;
                        s.st.redact = old.redact.clone();
                        heir = Some(sk);
                    }
                    Some(h) => s.st.shadow_of = Some(h),
                }
            }
        }
        heir.is_some()
    }

    /// Whether `f` left the globs, is drained and idle: done with.
    fn reapable(&self, f: &TailedFile, now: Instant) -> bool {
        !f.matched
            && f.st.shadow_of.is_none()
            && f.partial_since.is_none()
            && now.duration_since(f.last_activity) >= self.policy.drain_idle
            && if f.is_open() {
                // Drained: read to its end, and not truncated since
                // (a file shorter than its offset, or with a new head,
                // holds unread lines; a read handles the truncation).
                f.size().map(|s| s == f.st.offset).unwrap_or(true)
                    && f.head_unchanged().unwrap_or(true)
            } else {
                // Closed (found beside its old name): only if provably
                // untouched since its close; otherwise it is reopened,
                // drained, and judged as above.
                f.probe() == Probe::Unchanged
            }
    }

    fn drop_drained(&mut self, key: FileKey) {
        if let Some(f) = self.remove(key) {
            tracing::debug!(path = %f.st.path.display(), "stopped following drained file");
            self.hand_over(key, &f.st);
        }
    }

    /// Drop files that went away and are fully read, and close the handles
    /// of idle ones. Returns how many were dropped.
    pub fn reap(&mut self, now: Instant) -> usize {
        self.clock = now;
        self.no_victim = false;
        let gone: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| self.reapable(f, now))
            .map(|f| f.key())
            .collect();
        for &key in &gone {
            self.drop_drained(key);
        }
        // Copies whose original is gone and that are themselves unmatched.
        let orphans: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| f.st.shadow_of.is_some_and(|o| !self.files.contains_key(&o)))
            .map(|f| f.key())
            .collect();
        for k in orphans {
            if let Some(f) = self.files.get_mut(&k) {
                f.st.shadow_of = None;
            }
        }
        // Idle handles: nothing unread, nothing waiting, still under the
        // globs, and a stamp that lets a stat vouch for them (module doc).
        let idle: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| {
                f.is_open()
                    && f.matched
                    && f.partial_since.is_none()
                    && now.duration_since(f.last_activity) >= self.policy.close_idle
                    && f.settled()
            })
            .map(|f| f.key())
            .collect();
        for key in idle {
            self.close(key, CloseReason::Idle);
        }
        self.set_gauges();
        gone.len()
    }
}

/// Ids captured by the template from `path` (captures that are not ids,
/// like `{date}`, only constrain the match).
fn path_ids(template: Option<&PathTemplate>, path: &Path) -> Vec<(IdField, String)> {
    let (Some(t), Some(p)) = (template, path.to_str()) else {
        return Vec::new();
    };
    t.captures(p)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, v)| IdField::parse(name).map(|id| (id, v.to_string())))
        .collect()
}

/// Whether `copy` is named like a rotated version of `original`, in the same
/// directory: `app.log` -> `app.log.1`, `app.1.log`, `app-20260101.log`.
///
/// The names are compared first and the directories last: `place` asks this
/// of every followed file for each file it finds, and names tell most pairs
/// apart for less than comparing their parents (20,000 files: most of the
/// agent's catch-up CPU was spent here, in `Path::parent`).
fn is_rotated_name(original: &Path, copy: &Path) -> bool {
    let (Some(a), Some(b)) = (
        original.file_name().and_then(|n| n.to_str()),
        copy.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    // A rotated name adds to the original's (a suffix, an index, a date);
    // without this, `app.log` would pass for a rotation of `app.log.1` by
    // the stem rule below, and the live file for a copy of its own copy.
    if b.len() <= a.len() {
        return false;
    }
    let stem = a.split('.').next().unwrap_or(a);
    let sep_after = |prefix: &str| {
        b.strip_prefix(prefix)
            .and_then(|r| r.chars().next())
            .is_some_and(|c| matches!(c, '.' | '-' | '_'))
    };
    (sep_after(a) || (!stem.is_empty() && sep_after(stem))) && original.parent() == copy.parent()
}

/// Look for the file with `st`'s inode in the directory it was last seen
/// in. `Ok(None)` only when it is certainly not there (the directory was
/// listed, or is gone); an error (out of descriptors, not readable now)
/// proves nothing.
fn find_inode_near(st: &FileState) -> io::Result<Option<PathBuf>> {
    let Some(dir) = st.path.parent() else {
        return Ok(None);
    };
    let entries = match fds::injected_failure().and_then(|()| fs::read_dir(dir)) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(entries.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        (m.is_file() && m.dev() == st.dev && m.ino() == st.ino).then(|| e.path())
    }))
}

/// The path does not exist (or a component is no directory).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Visit regular files below `dir` (symlinks to files followed, symlinks to
/// directories not: no loops), `depth` levels deep. Returns `false` if a
/// directory could not be listed for lack of descriptors: files may have
/// been missed that are there.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path, &fs::Metadata)) -> bool {
    let entries = match fds::injected_failure().and_then(|()| fs::read_dir(dir)) {
        Ok(entries) => entries,
        Err(e) => return !out_of_fds(&e),
    };
    let mut complete = true;
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            if depth > 0 {
                complete &= walk(&path, depth - 1, visit);
            }
        } else if ft.is_file() || ft.is_symlink() {
            // metadata() follows the link; a dangling or looping link fails.
            if let Ok(m) = fs::metadata(&path) {
                if m.is_file() {
                    visit(&path, &m);
                }
            }
        }
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names() {
        let a = Path::new("/l/app.log");
        assert!(is_rotated_name(a, Path::new("/l/app.log.1")));
        assert!(is_rotated_name(a, Path::new("/l/app.1.log")));
        assert!(is_rotated_name(a, Path::new("/l/app-20260101.log")));
        assert!(!is_rotated_name(a, Path::new("/l/app.log")));
        assert!(!is_rotated_name(Path::new("/l/app.log.1"), a));
        assert!(!is_rotated_name(Path::new("/l/app-20260101.log"), a));
        assert!(!is_rotated_name(a, Path::new("/l/apple.log")));
        assert!(!is_rotated_name(a, Path::new("/other/app.log.1")));
        assert!(!is_rotated_name(
            Path::new("/l/f1.log"),
            Path::new("/l/f10.log")
        ));
    }
}
