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
//! `tests/model/tailer_model.rs` checks these rules against a model of the files
//! under random rotations, truncations, deletions and restarts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::discover::{MatcherError, SourceMatcher};
use super::file::{fingerprint, FileKey, FileState, Head, TailedFile, FP_LEN};
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
}

impl Default for TailPolicy {
    fn default() -> Self {
        TailPolicy {
            partial_line_timeout: Duration::from_secs(1),
            drain_idle: Duration::from_secs(5),
        }
    }
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
            policy,
            refs: Vec::new(),
        })
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
        let mut found: Vec<(usize, PathBuf, FileKey, u64)> = Vec::new();
        let mut claimed = HashSet::new();
        for (si, spec) in self.sources.iter().enumerate() {
            for root in spec.matcher.roots() {
                walk(
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
                if !self.restore(si, &path, st) {
                    new_files.push((si, path));
                }
            } else {
                new_files.push((si, path));
            }
        }
        // Restored files not found by the globs: renamed out of them while
        // the agent was down? Look for the inode beside the old path.
        let unfound: Vec<FileState> = self.pending.drain().map(|(_, s)| s).collect();
        for st in unfound {
            let si = self.sources.iter().position(|s| s.name == st.source);
            match (si, find_inode_near(&st)) {
                (Some(si), Some(path)) => {
                    if !self.restore(si, &path, st) {
                        self.adopt(si, &path);
                    }
                    if let Some(f) = self.files.values_mut().find(|f| f.st.path == path) {
                        f.matched = false;
                    }
                }
                _ => self.retire(&st),
            }
        }
        for f in self.files.values_mut() {
            if !claimed.contains(&f.key()) {
                f.matched = false;
            }
        }
        // Pass 2: files never seen before. Shorter names first: a rotated
        // name is longer than its original's, so when both a file and its
        // copy are new the original is adopted first and the copy becomes
        // its shadow, instead of both being read from the start.
        new_files.sort_by(|(_, a), (_, b)| {
            let len = |p: &PathBuf| p.file_name().map_or(0, |n| n.len());
            len(a).cmp(&len(b)).then_with(|| a.cmp(b))
        });
        for (si, path) in new_files {
            self.adopt(si, &path);
        }
        self.first_start = false;
        metrics().files_watched.set(self.files.len() as i64);
    }

    /// Re-attach restored state to a file found on disk. Returns false if
    /// the file is not the checkpointed one: the caller adopts it as new.
    fn restore(&mut self, si: usize, path: &Path, st: FileState) -> bool {
        let Some(head) = st.head else {
            // Nothing was read and no head recorded: the inode may have been
            // freed and reused while we were down, so nothing says this is
            // the same file. Adopting it reads it from the start all the
            // same, and checks whether it is a copy of a followed file.
            return false;
        };
        let mut f = match TailedFile::open(path, &st.source, si) {
            Ok(f) => f,
            // Out of file descriptors: the state stays pending (and in the
            // checkpoint) for the next scan. Retiring it would read the
            // file again from the start.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open a followed file; retrying at the next scan");
                self.pending.insert(st.key(), st);
                return true;
            }
            Err(_) => {
                self.retire(&st);
                return true;
            }
        };
        let same_head = f
            .handle
            .metadata()
            .map(|m| m.len() >= st.offset)
            .unwrap_or(false)
            && fingerprint(&f.handle, head.len).ok().flatten() == Some(head.hash);
        if !same_head {
            // Truncated or rewritten while we were down: a new stream.
            self.retire(&st);
            return false;
        }
        let mut st = st;
        if st.path != path {
            f.prev_path = Some(std::mem::replace(&mut st.path, path.to_path_buf()));
        }
        f.st = st;
        f.path_ids = path_ids(self.sources[si].template.as_ref(), path);
        self.files.insert(f.key(), f);
        true
    }

    fn retire(&mut self, st: &FileState) {
        let Some(head) = st.head else {
            return;
        };
        self.retired.push_back(Retired {
            source: st.source.clone(),
            path: st.path.clone(),
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
    fn adopt(&mut self, si: usize, path: &Path) {
        let spec = &self.sources[si];
        let mut f = match TailedFile::open(path, &spec.name, si) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open file");
                return;
            }
        };
        f.path_ids = path_ids(spec.template.as_ref(), path);
        if f.last_size == 0 {
            // Nothing says yet what this file is: copytruncate creates the
            // copy empty and fills it after. It is followed (its handle
            // keeps lines written before a quick delete readable) and
            // placed by `place` once it has content.
            self.undecided.insert(f.key());
            self.files.insert(f.key(), f);
            return;
        }
        self.place(f);
    }

    /// Decide where reading `f` (not in `files`) starts: a copy of a
    /// followed or truncated file continues from that file's offset, a new
    /// file starts at 0 (or at its end, at the very first start with
    /// `read_from = "end"`). Then follow it.
    fn place(&mut self, mut f: TailedFile) {
        let spec = &self.sources[f.source_idx];
        let path = f.st.path.clone();
        let path = path.as_path();
        let size = f.last_size;
        let mut heads: HashMap<u64, Option<u64>> = HashMap::new();
        let mut head = |len: u64| {
            *heads
                .entry(len)
                .or_insert_with(|| fingerprint(&f.handle, len).ok().flatten())
        };
        // A copy of a file we follow (named as a rotation of the original's
        // name, now or before its last rename)? Either it starts with the head we
        // recorded for the original (which may be truncated since: the
        // copytruncate case), or the original is intact and the copy's
        // head equals the original's current one. The second covers copies
        // the recorded head cannot vouch for: shorter than it (taken before
        // the original grew), or of a file that was empty when last read.
        let n = size.min(FP_LEN);
        let original = self.files.values().find(|a| {
            a.st.source == spec.name
                && a.st.shadow_of.is_none()
                && n > 0
                && (is_rotated_name(&a.st.path, path)
                    || a.prev_path
                        .as_ref()
                        .is_some_and(|p| is_rotated_name(p, path)))
                && (a
                    .st
                    .head
                    .is_some_and(|h| size >= h.len && head(h.len) == Some(h.hash))
                    || (head(n).is_some()
                        && head(n) == fingerprint(&a.handle, n).ok().flatten()
                        && a.head_unchanged().unwrap_or(false)))
        });
        if let Some(a) = original {
            f.st.shadow_of = Some(a.key());
            f.st.offset = a.st.offset.min(size);
            tracing::info!(path = %path.display(), original = %a.st.path.display(), "recognised a copy of a followed file; continuing from its offset");
        } else if let Some(i) = self.retired.iter().position(|r| {
            r.source == spec.name
                && size >= r.head.len
                && is_rotated_name(&r.path, path)
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
        self.files.insert(f.key(), f);
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
        if self.undecided.contains(&key) {
            let Some(f) = self.files.get_mut(&key) else {
                return Ok(0);
            };
            let size = f.size()?;
            if size == 0 {
                return Ok(0);
            }
            // It has content now: a copy in the making, or a new file.
            self.undecided.remove(&key);
            if let Some(mut f) = self.files.remove(&key) {
                f.last_size = size;
                self.place(f);
            }
        }
        let Some(f) = self.files.get_mut(&key) else {
            return Ok(0);
        };
        if f.st.shadow_of.is_some() {
            return Ok(0);
        }
        let size = f.size()?;
        // The head is checked even when the size did not change: a file
        // truncated and rewritten to exactly its old size between two polls
        // is otherwise taken for unchanged and its new lines never read.
        // Costs one read of at most `FP_LEN` bytes per call.
        if size < f.st.offset || !f.head_unchanged()? {
            tracing::info!(path = %f.st.path.display(), "file was truncated; reading it from the start");
            self.on_truncated(key);
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
            let n = f.read_chunk(buf, cap)?;
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
    pub fn has_more(&self, key: FileKey) -> bool {
        self.files.get(&key).is_some_and(|f| {
            f.st.shadow_of.is_none() && f.partial_since.is_none() && f.st.offset < f.last_size
        })
    }

    fn on_truncated(&mut self, key: FileKey) {
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        let old = f.st.clone();
        f.reset();
        f.last_size = 0;
        if !self.hand_over(key, &old) {
            self.retire(&old);
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

    /// Drop files that went away and are fully read. Returns how many.
    pub fn reap(&mut self, now: Instant) -> usize {
        let idle = self.policy.drain_idle;
        let gone: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| {
                !f.matched
                    && f.st.shadow_of.is_none()
                    && f.partial_since.is_none()
                    // Drained: read to its end, and not truncated since
                    // (a file shorter than its offset, or with a new head,
                    // holds unread lines; a read handles the truncation).
                    && f.size().map(|s| s == f.st.offset).unwrap_or(true)
                    && f.head_unchanged().unwrap_or(true)
                    && now.duration_since(f.last_activity) >= idle
            })
            .map(|f| f.key())
            .collect();
        for key in &gone {
            self.undecided.remove(key);
            if let Some(f) = self.files.remove(key) {
                tracing::debug!(path = %f.st.path.display(), "stopped following drained file");
                self.hand_over(*key, &f.st);
            }
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
        metrics().files_watched.set(self.files.len() as i64);
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
fn is_rotated_name(original: &Path, copy: &Path) -> bool {
    if original.parent() != copy.parent() {
        return false;
    }
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
    sep_after(a) || (!stem.is_empty() && sep_after(stem))
}

/// Look for the file with `st`'s inode in the directory it was last seen in.
fn find_inode_near(st: &FileState) -> Option<PathBuf> {
    let dir = st.path.parent()?;
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        (m.is_file() && m.dev() == st.dev && m.ino() == st.ino).then(|| e.path())
    })
}

/// Visit regular files below `dir` (symlinks to files followed, symlinks to
/// directories not: no loops), `depth` levels deep.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            if depth > 0 {
                walk(&path, depth - 1, visit);
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
