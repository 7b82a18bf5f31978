//! `--follow`: after the query, keep printing events as the agent writes
//! them, by reading the local segment files onward from where the query
//! stopped ([`Snapshot`]).
//!
//! The agent appends every event to a local segment before anything else
//! sees it, so following the files is complete and needs no connection to
//! the agent. Only complete lines are read (a half-written last line waits
//! for the next poll). New files (rotation, a new day, a new build) are
//! found by re-listing the tier's directories of yesterday and today at
//! each poll. Events come out in write order per file, files in path order:
//! a live view, not a sorted one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fetch::{next_line, MAX_LINE};
use super::plan::Snapshot;
use super::Filter;
use crate::event::Event;
use crate::segment::layout;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(250);

/// Follows one tier's local segments.
pub struct Follower {
    data_dir: PathBuf,
    filter: Filter,
    offsets: BTreeMap<PathBuf, u64>,
}

impl Follower {
    pub fn new(data_dir: &Path, filter: Filter, snapshot: Snapshot) -> Follower {
        Follower {
            data_dir: data_dir.to_path_buf(),
            filter,
            offsets: snapshot.local,
        }
    }

    /// One poll: every new complete, matching line, to `emit` (which
    /// returns false to stop).
    pub fn poll(&mut self, now: i64, emit: &mut dyn FnMut(Event) -> bool) -> std::io::Result<bool> {
        let tier = self.filter.query_tier();
        let day = now.div_euclid(86_400_000);
        let mut dirs = vec![self.data_dir.join(layout::tier_root(tier))];
        if !layout::per_build(tier) {
            dirs = (day - 1..=day)
                .map(|d| self.data_dir.join(layout::local_day_dir(tier, d)))
                .collect();
        }
        let mut files = Vec::new();
        for d in &dirs {
            collect(d, &mut files);
        }
        files.sort();
        self.offsets.retain(|p, _| p.exists());
        for path in files {
            let at = self.offsets.get(&path).copied().unwrap_or(0);
            let (end, go_on) = read_from(&path, at, &self.filter, emit)?;
            self.offsets.insert(path, end);
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&p, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "ndjson") => out.push(p),
            _ => {}
        }
    }
}

/// Emit the matching complete lines of `path` after `at`; the offset
/// after the last complete line, and whether to go on.
fn read_from(
    path: &Path,
    at: u64,
    filter: &Filter,
    emit: &mut dyn FnMut(Event) -> bool,
) -> std::io::Result<(u64, bool)> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((at, true)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len <= at {
        return Ok((at, true));
    }
    f.seek(SeekFrom::Start(at))?;
    let mut r = BufReader::new(f.take(len - at));
    let mut pos = at;
    let mut line = Vec::new();
    while let Some(end) = next_line(&mut r, &mut line, MAX_LINE)? {
        if !end.terminated {
            break;
        }
        pos += end.consumed as u64;
        if end.too_long {
            continue;
        }
        let Some(e) = std::str::from_utf8(&line)
            .ok()
            .and_then(|s| Event::from_json(s).ok())
        else {
            continue;
        };
        if e.ts >= filter.since && e.ts < filter.until && filter.keep_fields(&e) && !emit(e) {
            return Ok((pos, false));
        }
    }
    Ok((pos, true))
}
