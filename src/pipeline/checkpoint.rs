//! The checkpoint: one record that ties together where every source was
//! read to, how long every segment is, and which `seq` values may be used.
//!
//! It is written atomically (temp file, fsync, rename, fsync of the
//! directory) only after the segments it describes were fsynced, so after a
//! crash the pair (segments truncated to these lengths, sources resumed from
//! these offsets) holds every line exactly once.
//!
//! `seq` is leased in blocks: the checkpoint stores the end of the lease and
//! a restart continues from there, so a `seq` handed out after the last
//! checkpoint (and perhaps already seen by an alert receiver) is never
//! handed out again.
//!
//! **The on-disk format has its own types**, apart from the in-memory state
//! ([`FileState`], [`Retired`], [`SegmentState`], [`StreamState`]), which
//! stays free to change: renaming a field in `source/` cannot change what
//! is written here. Every file carries `"version"`; [`VERSION`] is written,
//! every older version stays readable (converted on load), and a version
//! this agent does not know is an error naming the file — never a silent
//! start from zero, which would read every file again. History:
//! - 1: the in-memory structs serialized directly; `fp_len == 0` meant "no
//!   head fingerprint yet";
//! - 2: explicit types; the head is an optional `{len, hash}`. Later
//!   extended, compatibly, with an optional `streams` list (event-stream
//!   cursors and recent ids, SPEC §11): omitted when empty, so a
//!   file-only agent writes exactly what it wrote before.
//!
//! **The previous checkpoint is kept** (`checkpoint.prev.json`, a hard link
//! to the file each store replaces). A current file that is corrupt or
//! truncated on disk (a bad block, a bad copy, a hand edit) falls back to
//! it, and that is exactly-once by the same argument as a crash just after
//! it was written: segments are cut back to the lengths it records, files
//! it does not know are removed, sources resume from its offsets — and no
//! segment it does not know as sealed was ever uploaded, because the
//! segment layer dispatches a sealed segment only after *two* checkpoints
//! record it (`SegmentSet::take_dispatch`). What the fallback costs: the
//! lines read between the two checkpoints (one `commit_interval`) are read
//! again, with new `seq` values (the `seq` lease moves on by one lease, so
//! none is reused).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Tier;
use crate::redact::StreamState;
use crate::segment::{SegmentId, SegmentState, Status};
use crate::source::file::{FileState, Head};
use crate::source::stream::state::StreamCheckpoint;
use crate::source::tailer::Retired;

/// The version this agent writes.
pub const VERSION: u64 = 2;

/// Where the checkpoint stands, in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub instance_id: String,
    /// First `seq` not covered by any lease handed out so far.
    pub seq_lease_end: u64,
    pub files: Vec<FileState>,
    pub retired: Vec<Retired>,
    pub segments: Vec<SegmentState>,
    /// Event-stream positions (SPEC §11).
    pub streams: Vec<StreamCheckpoint>,
}

impl Checkpoint {
    pub fn new(instance_id: &str) -> Checkpoint {
        Checkpoint {
            instance_id: instance_id.to_string(),
            ..Default::default()
        }
    }
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} is corrupt ({source}) and {prev}. Do not delete it to start over: every file would be read again from the beginning and every line already shipped would be shipped twice. Instead run `logship checkpoint repair` with this agent's config, which rebuilds it from the local segments and the bucket (README, \"Recovering a lost checkpoint\" says what that keeps and what it cannot)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
        /// What became of the previous checkpoint, as a clause.
        prev: String,
    },
    #[error(
        "cannot move the corrupt checkpoint {path} aside to resume from the previous one: {source}"
    )]
    MoveAside { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} has format version {found}, which this agent does not know (it reads 1 to {VERSION}); it was written by a newer logship: run that version, or move the file away to start over (files would then be read again from the beginning)")]
    UnknownVersion { path: PathBuf, found: u64 },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("checkpoint.json")
}

/// The checkpoint before the current one (see the module doc).
pub fn prev_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("checkpoint.prev.json")
}

/// Which file a loaded checkpoint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Current,
    /// The current one was corrupt (and is now `checkpoint.json.corrupt`).
    Previous,
}

/// The last checkpoint, or `None` at the very first start.
pub fn load(data_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    load_with_fallback(data_dir).map(|o| o.map(|(cp, _)| cp))
}

/// The last checkpoint, falling back to the previous one when the current
/// file is corrupt. The corrupt file is moved aside first, so the next
/// store cannot make it the "previous" one.
pub fn load_with_fallback(
    data_dir: &Path,
) -> Result<Option<(Checkpoint, Origin)>, CheckpointError> {
    let p = path(data_dir);
    let source = match read_one(&p) {
        Ok(None) => {
            // A current file missing beside a previous one was deleted by
            // hand: not a first start.
            return Ok(read_one(&prev_path(data_dir)).ok().flatten().map(|cp| {
                tracing::warn!(path = %p.display(), "checkpoint is missing; resuming from the previous one");
                (cp, Origin::Previous)
            }));
        }
        Ok(Some(cp)) => return Ok(Some((cp, Origin::Current))),
        Err(LoadError::Io(source)) => return Err(CheckpointError::Read { path: p, source }),
        Err(LoadError::Decode(Decode::Version(found))) => {
            return Err(CheckpointError::UnknownVersion { path: p, found })
        }
        Err(LoadError::Decode(Decode::Json(e))) => e,
    };
    let pp = prev_path(data_dir);
    let prev = match read_one(&pp) {
        Ok(Some(cp)) => cp,
        Ok(None) => {
            return Err(CheckpointError::Corrupt {
                path: p,
                source,
                prev: "there is no previous checkpoint to fall back to".into(),
            })
        }
        Err(e) => {
            return Err(CheckpointError::Corrupt {
                path: p,
                source,
                prev: format!("the previous one, {}, is unusable too ({e})", pp.display()),
            })
        }
    };
    let aside = p.with_extension("json.corrupt");
    fs::rename(&p, &aside).map_err(|source| CheckpointError::MoveAside {
        path: p.clone(),
        source,
    })?;
    tracing::warn!(path = %p.display(), error = %source, moved_to = %aside.display(), previous = %pp.display(), "checkpoint is corrupt; resuming from the previous one (exactly once: segments are cut back to its lengths, the lines read since are read again)");
    Ok(Some((prev, Origin::Previous)))
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{0}")]
    Io(io::Error),
    #[error("{0}")]
    Decode(Decode),
}

fn read_one(p: &Path) -> Result<Option<Checkpoint>, LoadError> {
    let bytes = match fs::read(p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    decode(&bytes).map(Some).map_err(LoadError::Decode)
}

/// Write `cp` durably and atomically (in the current format), keeping the
/// checkpoint it replaces as the previous one. On an error nothing changed
/// on disk but perhaps the previous one (the current file is untouched);
/// an error after the new file took its place is not returned when it is a
/// full or read-only disk, since the new file is then already what a
/// restart reads, and the old one would be just as safe (module doc).
pub fn store(data_dir: &Path, cp: &Checkpoint, scratch: &mut Vec<u8>) -> io::Result<()> {
    let p = path(data_dir);
    let dir = p.parent().unwrap_or(data_dir);
    fs::create_dir_all(dir)?;
    scratch.clear();
    encode(cp, scratch)?;
    let tmp = dir.join("checkpoint.json.tmp");
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(scratch)?;
        f.sync_data()
    });
    if let Err(e) = written.and_then(|()| keep_previous(data_dir)) {
        // Give the space back: a full disk is a condition to wait out.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &p)?;
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if crate::ops::disk::classify(&e).is_some() => {
            tracing::warn!(error = %e, "fsync of the checkpoint directory failed; the next commit makes it durable");
            Ok(())
        }
        r => r,
    }
}

/// Hard-link the current checkpoint as the previous one (no copy: the
/// current file is replaced by a rename, never written in place).
fn keep_previous(data_dir: &Path) -> io::Result<()> {
    let (p, prev) = (path(data_dir), prev_path(data_dir));
    let tmp = prev.with_extension("json.tmp");
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match fs::hard_link(&p, &tmp) {
        Ok(()) => fs::rename(&tmp, &prev),
        // First store, or the current one was moved aside as corrupt.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `cp` in the current on-disk format, appended to `out`.
pub fn encode(cp: &Checkpoint, out: &mut Vec<u8>) -> io::Result<()> {
    serde_json::to_writer(out, &v2::Checkpoint::from(cp)).map_err(io::Error::other)
}

/// Why bytes are not a checkpoint this agent can use.
#[derive(Debug, thiserror::Error)]
pub enum Decode {
    #[error("{0}")]
    Json(serde_json::Error),
    /// A version this agent does not know.
    #[error("unknown checkpoint format version {0}")]
    Version(u64),
}

/// Parse a checkpoint of any known version.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, Decode> {
    /// Only the version, whatever else the file holds.
    #[derive(Deserialize)]
    struct Probe {
        version: u64,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(Decode::Json)?;
    match probe.version {
        1 => serde_json::from_slice::<v1::Checkpoint>(bytes)
            .map(Checkpoint::from)
            .map_err(Decode::Json),
        2 => serde_json::from_slice::<v2::Checkpoint>(bytes)
            .map_err(Decode::Json)?
            .try_into(),
        other => Err(Decode::Version(other)),
    }
}

/// The current format. Field names here are the file's; change them only
/// with a new version.
mod v2 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Checkpoint {
        /// Always [`VERSION`] when written.
        pub version: u64,
        pub instance_id: String,
        pub seq_lease_end: u64,
        pub files: Vec<File>,
        pub retired: Vec<Retired>,
        pub segments: Vec<Segment>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub streams: Vec<Stream>,
    }

    /// One event stream's position: the cursor of its last written event
    /// and the hashed ids of its most recent ones.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Stream {
        pub source: String,
        /// `""` for a single-stream source; a deployment id for Vercel.
        pub stream: String,
        pub cursor: Option<String>,
        pub ids: Vec<u64>,
        pub done: bool,
        pub touched_ms: i64,
    }

    /// The fingerprint of a file's first `len` bytes.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Head {
        pub len: u64,
        pub hash: u64,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        pub source: String,
        pub path: PathBuf,
        pub dev: u64,
        pub ino: u64,
        pub offset: u64,
        /// `None`: nothing of the file seen yet.
        pub head: Option<Head>,
        pub skipping: bool,
        /// An open PEM private-key block: `(lines, bytes)` redacted so far.
        pub pem_block: Option<(u32, usize)>,
        /// `(dev, ino)` of the file this one is a copy of.
        pub shadow_of: Option<(u64, u64)>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Retired {
        pub source: String,
        pub path: PathBuf,
        /// Absent when the file was not renamed (and in older files), so
        /// a checkpoint without such a file is as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub prev_path: Option<PathBuf>,
        pub head: Head,
        pub offset: u64,
        pub skipping: bool,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Status {
        Open,
        Sealed,
        Uploaded,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Segment {
        pub id: u64,
        pub tier: Tier,
        pub group: Option<String>,
        pub day: i64,
        pub path: PathBuf,
        pub key: String,
        pub len: u64,
        pub lines: u64,
        pub first_ts: i64,
        pub last_ts: i64,
        pub created_ms: i64,
        pub last_write_ms: i64,
        pub status: Status,
        pub generation: u32,
        pub uploaded_ms: Option<i64>,
    }
}

/// Version 1, read only: what the in-memory structs serialized to before
/// the format had types of its own.
mod v1 {
    use super::*;

    #[derive(Deserialize)]
    pub struct Checkpoint {
        pub instance_id: String,
        pub seq_lease_end: u64,
        pub files: Vec<File>,
        pub retired: Vec<Retired>,
        pub segments: Vec<v2::Segment>,
    }

    #[derive(Deserialize)]
    pub struct File {
        pub source: String,
        pub path: PathBuf,
        pub dev: u64,
        pub ino: u64,
        pub offset: u64,
        /// 0: no head yet.
        pub fp_len: u64,
        pub fp: u64,
        pub skipping: bool,
        #[serde(default)]
        pub redact: Redact,
        #[serde(default)]
        pub shadow_of: Option<(u64, u64)>,
    }

    #[derive(Deserialize, Default)]
    pub struct Redact {
        pub block: Option<Block>,
    }

    #[derive(Deserialize)]
    pub struct Block {
        pub lines: u32,
        pub bytes: usize,
    }

    #[derive(Deserialize)]
    pub struct Retired {
        pub source: String,
        pub path: PathBuf,
        pub fp_len: u64,
        pub fp: u64,
        pub offset: u64,
        pub skipping: bool,
    }

    pub fn head(len: u64, hash: u64) -> Option<Head> {
        (len > 0).then_some(Head { len, hash })
    }
}

impl From<&Checkpoint> for v2::Checkpoint {
    fn from(cp: &Checkpoint) -> v2::Checkpoint {
        let head = |h: &Head| v2::Head {
            len: h.len,
            hash: h.hash,
        };
        v2::Checkpoint {
            version: VERSION,
            instance_id: cp.instance_id.clone(),
            seq_lease_end: cp.seq_lease_end,
            files: cp
                .files
                .iter()
                .map(|f| v2::File {
                    source: f.source.clone(),
                    path: f.path.clone(),
                    dev: f.dev,
                    ino: f.ino,
                    offset: f.offset,
                    head: f.head.as_ref().map(head),
                    skipping: f.skipping,
                    pem_block: f.redact.open_block(),
                    shadow_of: f.shadow_of,
                })
                .collect(),
            retired: cp
                .retired
                .iter()
                .map(|r| v2::Retired {
                    source: r.source.clone(),
                    path: r.path.clone(),
                    prev_path: r.prev_path.clone(),
                    head: head(&r.head),
                    offset: r.offset,
                    skipping: r.skipping,
                })
                .collect(),
            segments: cp.segments.iter().map(v2::Segment::from).collect(),
            streams: cp
                .streams
                .iter()
                .map(|s| v2::Stream {
                    source: s.source.clone(),
                    stream: s.stream.clone(),
                    cursor: s.cursor.clone(),
                    ids: s.ids.clone(),
                    done: s.done,
                    touched_ms: s.touched_ms,
                })
                .collect(),
        }
    }
}

impl TryFrom<v2::Checkpoint> for Checkpoint {
    type Error = Decode;

    fn try_from(cp: v2::Checkpoint) -> Result<Checkpoint, Decode> {
        if cp.version != 2 {
            return Err(Decode::Version(cp.version));
        }
        let head = |h: v2::Head| Head {
            len: h.len,
            hash: h.hash,
        };
        Ok(Checkpoint {
            instance_id: cp.instance_id,
            seq_lease_end: cp.seq_lease_end,
            files: cp
                .files
                .into_iter()
                .map(|f| FileState {
                    source: f.source,
                    path: f.path,
                    dev: f.dev,
                    ino: f.ino,
                    offset: f.offset,
                    head: f.head.map(head),
                    skipping: f.skipping,
                    redact: StreamState::with_open_block(f.pem_block),
                    shadow_of: f.shadow_of,
                })
                .collect(),
            retired: cp
                .retired
                .into_iter()
                .map(|r| Retired {
                    source: r.source,
                    path: r.path,
                    prev_path: r.prev_path,
                    head: head(r.head),
                    offset: r.offset,
                    skipping: r.skipping,
                })
                .collect(),
            segments: cp.segments.into_iter().map(SegmentState::from).collect(),
            streams: cp
                .streams
                .into_iter()
                .map(|s| StreamCheckpoint {
                    source: s.source,
                    stream: s.stream,
                    cursor: s.cursor,
                    ids: s.ids,
                    done: s.done,
                    touched_ms: s.touched_ms,
                })
                .collect(),
        })
    }
}

impl From<v1::Checkpoint> for Checkpoint {
    fn from(cp: v1::Checkpoint) -> Checkpoint {
        Checkpoint {
            instance_id: cp.instance_id,
            seq_lease_end: cp.seq_lease_end,
            files: cp
                .files
                .into_iter()
                .map(|f| FileState {
                    source: f.source,
                    path: f.path,
                    dev: f.dev,
                    ino: f.ino,
                    offset: f.offset,
                    head: v1::head(f.fp_len, f.fp),
                    skipping: f.skipping,
                    redact: StreamState::with_open_block(
                        f.redact.block.map(|b| (b.lines, b.bytes)),
                    ),
                    shadow_of: f.shadow_of,
                })
                .collect(),
            // Version 1 never retired a file without a head.
            retired: cp
                .retired
                .into_iter()
                .filter_map(|r| {
                    Some(Retired {
                        head: v1::head(r.fp_len, r.fp)?,
                        source: r.source,
                        path: r.path,
                        prev_path: None,
                        offset: r.offset,
                        skipping: r.skipping,
                    })
                })
                .collect(),
            segments: cp.segments.into_iter().map(SegmentState::from).collect(),
            streams: Vec::new(),
        }
    }
}

impl From<&SegmentState> for v2::Segment {
    fn from(s: &SegmentState) -> v2::Segment {
        v2::Segment {
            id: s.id.0,
            tier: s.tier,
            group: s.group.clone(),
            day: s.day,
            path: s.path.clone(),
            key: s.key.clone(),
            len: s.len,
            lines: s.lines,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            created_ms: s.created_ms,
            last_write_ms: s.last_write_ms,
            status: match s.status {
                Status::Open => v2::Status::Open,
                Status::Sealed => v2::Status::Sealed,
                Status::Uploaded => v2::Status::Uploaded,
            },
            generation: s.generation,
            uploaded_ms: s.uploaded_ms,
        }
    }
}

impl From<v2::Segment> for SegmentState {
    fn from(s: v2::Segment) -> SegmentState {
        SegmentState {
            id: SegmentId(s.id),
            tier: s.tier,
            group: s.group,
            day: s.day,
            path: s.path,
            key: s.key,
            len: s.len,
            lines: s.lines,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            created_ms: s.created_ms,
            last_write_ms: s.last_write_ms,
            status: match s.status {
                v2::Status::Open => Status::Open,
                v2::Status::Sealed => Status::Sealed,
                v2::Status::Uploaded => Status::Uploaded,
            },
            generation: s.generation,
            uploaded_ms: s.uploaded_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut cp = Checkpoint::new("h");
        cp.seq_lease_end = 99;
        cp.files.push(FileState {
            source: "app".into(),
            path: "/l/a.log".into(),
            dev: 1,
            ino: 2,
            offset: 30,
            head: Some(Head {
                len: 30,
                hash: u64::MAX - 1,
            }),
            skipping: true,
            redact: StreamState::with_open_block(Some((2, 100))),
            shadow_of: Some((1, 3)),
        });
        cp.files.push(FileState {
            source: "app".into(),
            path: "/l/b.log".into(),
            dev: 1,
            ino: 4,
            offset: 0,
            head: None,
            skipping: false,
            redact: StreamState::default(),
            shadow_of: None,
        });
        cp.retired.push(Retired {
            source: "app".into(),
            path: "/l/c.log".into(),
            prev_path: Some("/l/c.log.0".into()),
            head: Head { len: 5, hash: 7 },
            offset: 5,
            skipping: false,
        });
        cp
    }

    #[test]
    fn round_trip_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        let cp = sample();
        store(d.path(), &cp, &mut Vec::new()).unwrap();
        assert_eq!(load(d.path()).unwrap().unwrap(), cp);
        let text = fs::read_to_string(path(d.path())).unwrap();
        assert!(text.starts_with("{\"version\":2,"), "{text}");
        fs::write(path(d.path()), b"{garbage").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        assert!(
            e.contains("checkpoint repair") && e.contains("Do not delete"),
            "{e}"
        );
    }

    #[test]
    fn a_corrupt_checkpoint_falls_back_to_the_previous_one() {
        let d = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (sample(), sample());
        a.seq_lease_end = 1;
        b.seq_lease_end = 2;
        store(d.path(), &a, &mut Vec::new()).unwrap();
        assert!(!prev_path(d.path()).exists(), "nothing to keep at first");
        store(d.path(), &b, &mut Vec::new()).unwrap();
        assert_eq!(decode(&fs::read(prev_path(d.path())).unwrap()).unwrap(), a);
        // Torn in the middle.
        let text = fs::read(path(d.path())).unwrap();
        fs::write(path(d.path()), &text[..text.len() / 2]).unwrap();
        let (cp, origin) = load_with_fallback(d.path()).unwrap().unwrap();
        assert_eq!((cp, origin), (a.clone(), Origin::Previous));
        assert!(path(d.path()).with_extension("json.corrupt").exists());
        // The next store does not make the corrupt file the previous one.
        store(d.path(), &b, &mut Vec::new()).unwrap();
        assert_eq!(decode(&fs::read(prev_path(d.path())).unwrap()).unwrap(), a);
        assert_eq!(load(d.path()).unwrap().unwrap(), b);
        // Both unusable: an error naming both, and no advice to delete.
        fs::write(path(d.path()), b"{").unwrap();
        fs::write(prev_path(d.path()), b"").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("checkpoint.json") && e.contains("checkpoint.prev.json"),
            "{e}"
        );
    }

    #[test]
    fn streams_round_trip_and_are_omitted_when_empty() {
        let mut cp = sample();
        let mut out = Vec::new();
        encode(&cp, &mut out).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("streams"));
        cp.streams.push(StreamCheckpoint {
            source: "vercel".into(),
            stream: "dpl_1".into(),
            cursor: Some("1700000000000".into()),
            ids: vec![1, u64::MAX],
            done: false,
            touched_ms: 5,
        });
        out.clear();
        encode(&cp, &mut out).unwrap();
        assert_eq!(decode(&out).unwrap(), cp);
    }

    #[test]
    fn version_1_is_read_with_its_sentinel_as_no_head() {
        let v1 = r#"{"version":1,"instance_id":"h","seq_lease_end":7,"files":[{"source":"app","path":"/l/a.log","dev":1,"ino":2,"offset":0,"fp_len":0,"fp":0,"skipping":false},{"source":"app","path":"/l/b.log","dev":1,"ino":4,"offset":9,"fp_len":9,"fp":18446744073709551614,"skipping":false,"redact":{"block":{"lines":1,"bytes":3}},"shadow_of":[1,2]}],"retired":[{"source":"app","path":"/l/c.log","fp_len":5,"fp":7,"offset":5,"skipping":true}],"segments":[]}"#;
        let cp = decode(v1.as_bytes()).unwrap();
        assert_eq!(cp.seq_lease_end, 7);
        assert_eq!(cp.files[0].head, None);
        assert_eq!(
            cp.files[1].head,
            Some(Head {
                len: 9,
                hash: u64::MAX - 1
            })
        );
        assert_eq!(cp.files[1].redact.open_block(), Some((1, 3)));
        assert_eq!(cp.files[1].shadow_of, Some((1, 2)));
        assert_eq!(cp.retired[0].head, Head { len: 5, hash: 7 });
        assert!(cp.retired[0].skipping);
    }

    #[test]
    fn an_unknown_version_is_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("state")).unwrap();
        fs::write(path(d.path()), br#"{"version":3,"whatever":[]}"#).unwrap();
        let e = load(d.path()).unwrap_err();
        assert!(matches!(
            e,
            CheckpointError::UnknownVersion { found: 3, .. }
        ));
        let msg = e.to_string();
        assert!(
            msg.contains("checkpoint.json") && msg.contains("newer logship"),
            "{msg}"
        );
        fs::write(path(d.path()), br#"{"files":[]}"#).unwrap();
        assert!(matches!(
            load(d.path()).unwrap_err(),
            CheckpointError::Corrupt { .. }
        ));
    }
}
