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

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::segment::SegmentState;
use crate::source::file::FileState;
use crate::source::tailer::Retired;

const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub instance_id: String,
    /// First `seq` not covered by any lease handed out so far.
    pub seq_lease_end: u64,
    pub files: Vec<FileState>,
    pub retired: Vec<Retired>,
    pub segments: Vec<SegmentState>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("checkpoint.json")
}

/// The last checkpoint, or `None` at the very first start.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let p = path(data_dir);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot read checkpoint {}: {e}",
                p.display()
            ))
        }
    };
    let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "checkpoint {} is corrupt ({e}); move it away to start over (files would be read again from the beginning)",
            p.display()
        )
    })?;
    if cp.version != VERSION {
        anyhow::bail!(
            "checkpoint {} has version {}, this agent reads {VERSION}",
            p.display(),
            cp.version
        );
    }
    Ok(Some(cp))
}

/// Write `cp` durably and atomically.
pub fn store(data_dir: &Path, cp: &Checkpoint, scratch: &mut Vec<u8>) -> io::Result<()> {
    let p = path(data_dir);
    let dir = p.parent().unwrap_or(data_dir);
    fs::create_dir_all(dir)?;
    scratch.clear();
    serde_json::to_writer(&mut *scratch, cp).map_err(io::Error::other)?;
    let tmp = dir.join("checkpoint.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(scratch)?;
    f.sync_data()?;
    fs::rename(&tmp, &p)?;
    File::open(dir)?.sync_all()
}

impl Checkpoint {
    pub fn new(instance_id: &str) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            instance_id: instance_id.to_string(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        let mut cp = Checkpoint::new("h");
        cp.seq_lease_end = 99;
        store(d.path(), &cp, &mut Vec::new()).unwrap();
        assert_eq!(load(d.path()).unwrap().unwrap().seq_lease_end, 99);
        fs::write(path(d.path()), b"{garbage").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
    }
}
