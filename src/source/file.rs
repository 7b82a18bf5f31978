//! One tailed file: its identity, its read position, and reading a chunk.
//!
//! Identity is more than a path. Device + inode say "the same file" while it
//! lives (a rename keeps them), and a fingerprint of the first bytes (up to
//! [`FP_LEN`]) tells a truncated-and-rewritten file, a reused inode, or a
//! copy (`copytruncate`) apart. Reads use `pread` on a handle opened once, so
//! a file renamed or deleted under us is still drained to its end.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::event::IdField;
use crate::redact::StreamState;

/// Bytes of a file's head that identify it.
pub const FP_LEN: u64 = 1024;

/// `(device, inode)`.
pub type FileKey = (u64, u64);

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
    pub handle: File,
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
            handle,
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

    pub fn size(&self) -> io::Result<u64> {
        Ok(self.handle.metadata()?.len())
    }

    /// Extend the fingerprint as the file grows, up to [`FP_LEN`].
    pub fn refresh_fingerprint(&mut self, size: u64) -> io::Result<()> {
        let want = size.min(FP_LEN);
        if want > self.st.head.map_or(0, |h| h.len) {
            if let Some(hash) = fingerprint(&self.handle, want)? {
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
            Some(h) => Ok(fingerprint(&self.handle, h.len)? == Some(h.hash)),
        }
    }

    /// Read up to `buf.capacity()` bytes at the current offset into `buf`.
    pub fn read_chunk(&self, buf: &mut Vec<u8>, cap: usize) -> io::Result<usize> {
        buf.clear();
        buf.resize(cap, 0);
        let mut got = 0;
        while got < cap {
            let n = self
                .handle
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
