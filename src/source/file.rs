//! One tailed file: its identity, its read position, and reading a chunk.
//!
//! Identity is more than a path. Device + inode say "the same file" while it
//! lives (a rename keeps them), and a fingerprint of the first bytes (up to
//! [`FP_LEN`]) tells a truncated-and-rewritten file, a reused inode, or a
//! copy (`copytruncate`) apart. Reads use `pread` on an open handle, so a
//! file renamed or deleted under us is still drained to its end.
//!
//! The handle may be closed to bound the descriptors in use (the tailer
//! decides when; see `tailer`). A closed file keeps everything else — its
//! position, head, stream state — and is reopened *by identity*: by its
//! path, and only if that path still holds the same device + inode (the
//! head is then checked by the read, as for an open file). What a closed
//! handle loses is the hold on the inode: a file deleted while closed is
//! gone with whatever was written after it was closed, and its inode may be
//! handed to a new file (told apart by the head, as after a restart).
//!
//! While closed, a `stat` by path says whether the file may have changed:
//! size, mtime and ctime as recorded at the close. Timestamps are coarse (a
//! kernel tick, or worse), so a truncate-and-rewrite to the same size
//! within the tick of the last write would look unchanged; the record is
//! only trusted when the file's ctime was [`STAMP_SETTLE`] older than the
//! clock at the close, so any later change must carry a later ctime.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::event::IdField;
use crate::redact::StreamState;

/// Bytes of a file's head that identify it.
pub const FP_LEN: u64 = 1024;

/// `(device, inode)`.
pub type FileKey = (u64, u64);

/// How much older than the clock a file's ctime must be for a `stat` to
/// vouch that it did not change while closed (module doc). Two seconds
/// cover coarse kernel ticks and file systems with 2 s timestamps.
pub const STAMP_SETTLE: Duration = Duration::from_secs(2);

/// What a `stat` of a closed file showed at its close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    /// The ctime had settled at the close: an equal stamp later means no
    /// change. Otherwise only a reopen (and the read's head check) can tell.
    trusted: bool,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        let ctime_ns = ns(m.ctime(), m.ctime_nsec());
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Stamp {
            size: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns,
            trusted: ctime_ns + (STAMP_SETTLE.as_nanos() as i128) < now_ns,
        }
    }

    fn same(&self, other: &Stamp) -> bool {
        (self.size, self.mtime_ns, self.ctime_ns) == (other.size, other.mtime_ns, other.ctime_ns)
    }
}

/// What a look at a closed file's path found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Same file, provably unchanged since the close: nothing to read.
    Unchanged,
    /// Same file, changed or not provably unchanged: reopen and read.
    Changed,
    /// The path holds another file or none: renamed or deleted while closed.
    Moved,
}

/// Whether an I/O error is the process or system running out of file
/// descriptors: a reason to wait and retry, never a verdict on the file.
pub fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The fingerprint of a file's first `len` bytes (1..=[`FP_LEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: u64,
    pub hash: u64,
}

/// What survives a restart about one file (part of the checkpoint, which
/// has its own on-disk types: `pipeline::checkpoint`).
#[derive(Clone, Debug, PartialEq)]
pub struct FileState {
    pub source: String,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// Offset just after the last line handed to the pipeline.
    pub offset: u64,
    /// The head fingerprint; `None` until the file has a first byte.
    pub head: Option<Head>,
    /// Inside an over-long line whose head was already emitted.
    pub skipping: bool,
    /// Redaction state of this stream (an open PEM block spans lines).
    pub redact: StreamState,
    /// A copy of this other file (copytruncate): not read while that one
    /// lives; takes over from its offset when it is truncated or goes away.
    pub shadow_of: Option<FileKey>,
}

impl FileState {
    pub fn key(&self) -> FileKey {
        (self.dev, self.ino)
    }
}

/// A file being tailed.
#[derive(Debug)]
pub struct TailedFile {
    pub st: FileState,
    /// `None` while closed to bound descriptors (module doc).
    handle: Option<File>,
    /// What the file looked like when its handle was closed.
    closed: Option<Stamp>,
    /// Index of the source in the config.
    pub source_idx: usize,
    /// Ids captured from the path template.
    pub path_ids: Vec<(IdField, String)>,
    /// The path before the last rename seen: a copy made before that
    /// rename is named after it.
    pub prev_path: Option<PathBuf>,
    /// The path still matches the source's globs.
    pub matched: bool,
    /// Size seen at the last poll.
    pub last_size: u64,
    /// Since when an incomplete last line has been waiting.
    pub partial_since: Option<Instant>,
    /// Last time the file grew or was read.
    pub last_activity: Instant,
}

/// Hash of the first `len` bytes of `f` (xxh3; `None` if shorter).
pub fn fingerprint(f: &File, len: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; len as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = f.read_at(&mut buf[got..], got as u64)?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(xxhash_rust::xxh3::xxh3_64(&buf)))
}

impl TailedFile {
    /// Open `path` for tailing; `offset` etc. are decided by the caller.
    pub fn open(path: &Path, source: &str, source_idx: usize) -> io::Result<TailedFile> {
        super::fds::injected_failure()?;
        let handle = File::open(path)?;
        let m = handle.metadata()?;
        if !m.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let now = Instant::now();
        Ok(TailedFile {
            st: FileState {
                source: source.to_string(),
                path: path.to_path_buf(),
                dev: m.dev(),
                ino: m.ino(),
                offset: 0,
                head: None,
                skipping: false,
                redact: StreamState::default(),
                shadow_of: None,
            },
            handle: Some(handle),
            closed: None,
            source_idx,
            path_ids: Vec::new(),
            prev_path: None,
            matched: true,
            last_size: m.len(),
            partial_since: None,
            last_activity: now,
        })
    }

    pub fn key(&self) -> FileKey {
        self.st.key()
    }

    pub fn is_open(&self) -> bool {
        self.handle.is_some()
    }

    /// Left the globs (deleted, or renamed out of them) and read for
    /// itself: what it has left can only be read through its open handle.
    pub fn must_drain(&self) -> bool {
        !self.matched && self.st.shadow_of.is_none()
    }

    /// The open handle; an error while closed (the caller reopens first).
    fn open_handle(&self) -> io::Result<&File> {
        self.handle
            .as_ref()
            .ok_or_else(|| io::Error::other("file handle is closed"))
    }

    /// Metadata of this very file: through the handle, or while closed by
    /// path (`NotFound` if the path no longer holds this inode).
    fn metadata(&self) -> io::Result<std::fs::Metadata> {
        match &self.handle {
            Some(h) => h.metadata(),
            None => {
                let m = std::fs::metadata(&self.st.path)?;
                if (m.dev(), m.ino()) != self.key() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "path holds another file",
                    ));
                }
                Ok(m)
            }
        }
    }

    /// Run `f` on a handle of this file: the open one, or while closed a
    /// short-lived one opened by path (identity checked), closed after.
    fn with_handle<R>(&self, f: impl FnOnce(&File) -> io::Result<R>) -> io::Result<R> {
        match &self.handle {
            Some(h) => f(h),
            None => {
                super::fds::injected_failure()?;
                let h = File::open(&self.st.path)?;
                let m = h.metadata()?;
                if (m.dev(), m.ino()) != self.key() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "path holds another file",
                    ));
                }
                f(&h)
            }
        }
    }

    pub fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    /// Hash of the first `len` bytes now (`None` if shorter); works while
    /// closed too.
    pub fn head_hash(&self, len: u64) -> io::Result<Option<u64>> {
        self.with_handle(|h| fingerprint(h, len))
    }

    /// Extend the fingerprint as the file grows, up to [`FP_LEN`].
    pub fn refresh_fingerprint(&mut self, size: u64) -> io::Result<()> {
        let want = size.min(FP_LEN);
        if want > self.st.head.map_or(0, |h| h.len) {
            if let Some(hash) = fingerprint(self.open_handle()?, want)? {
                self.st.head = Some(Head { len: want, hash });
            }
        }
        Ok(())
    }

    /// Whether the head of the file still has the recorded fingerprint.
    /// `false` means it was truncated and rewritten (or is another file).
    pub fn head_unchanged(&self) -> io::Result<bool> {
        match self.st.head {
            None => Ok(true),
            Some(h) => Ok(self.head_hash(h.len)? == Some(h.hash)),
        }
    }

    /// Close the handle, recording what the file looks like now. The
    /// caller decides that nothing needs the open handle (`tailer`).
    pub fn close(&mut self) {
        if let Some(h) = self.handle.take() {
            // Without a stamp the file is reopened at the next look.
            self.closed = h.metadata().ok().map(|m| Stamp::of(&m));
        }
    }

    /// Look at a closed file's path without opening it. Unchanged means
    /// read to its end when closed, and provably untouched since.
    pub fn probe(&self) -> Probe {
        let m = match self.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Probe::Moved,
            // Cannot tell (a directory not searchable now, say): a reopen
            // attempt will say more, and fail harmlessly.
            Err(_) => return Probe::Changed,
        };
        match self.closed {
            Some(s) if s.trusted && s.size == self.st.offset && s.same(&Stamp::of(&m)) => {
                Probe::Unchanged
            }
            _ => Probe::Changed,
        }
    }

    /// Whether closing now would leave a stamp that vouches for the file
    /// (module doc) and nothing unread: an idle close that the next look
    /// does not undo.
    pub fn settled(&self) -> bool {
        self.handle
            .as_ref()
            .and_then(|h| h.metadata().ok())
            .map(|m| Stamp::of(&m))
            .is_some_and(|s| s.trusted && s.size == self.st.offset)
    }

    /// Reopen a closed file by path. `Ok(false)`: the path holds another
    /// file or none (renamed or deleted while closed); an error (out of
    /// descriptors, say) leaves it closed to retry.
    pub fn reopen(&mut self) -> io::Result<bool> {
        if self.handle.is_some() {
            return Ok(true);
        }
        super::fds::injected_failure()?;
        let h = match File::open(&self.st.path) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let m = h.metadata()?;
        if (m.dev(), m.ino()) != self.key() {
            return Ok(false);
        }
        self.handle = Some(h);
        self.closed = None;
        Ok(true)
    }

    /// Read up to `buf.capacity()` bytes at the current offset into `buf`.
    pub fn read_chunk(&self, buf: &mut Vec<u8>, cap: usize) -> io::Result<usize> {
        buf.clear();
        buf.resize(cap, 0);
        let mut got = 0;
        while got < cap {
            let n = self
                .open_handle()?
                .read_at(&mut buf[got..], self.st.offset + got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        Ok(got)
    }

    /// Forget the position: the file was truncated or rewritten.
    pub fn reset(&mut self) {
        self.st.offset = 0;
        self.st.head = None;
        self.st.skipping = false;
        self.st.redact = StreamState::default();
        self.partial_since = None;
    }
}
