//! The pipeline's side of a data_dir that takes no writes (`ops::disk`):
//! pause, roll back to the last checkpoint, probe, resume.
//!
//! Why a rollback, not a retry of the failed write: when an append or an
//! fsync fails, the chunk being read is half in a segment and the tailer's
//! offsets are already past it. Exactly the state a restart would rebuild
//! is the last checkpoint's, so that is what the pipeline goes back to, in
//! process: the tailer is rebuilt from the checkpoint's file states, the
//! segments from its segment states (keeping uploads that completed and
//! uploads in flight), the `seq` lease from its lease end (`seq` itself
//! never goes back). Segment files are then cut back to the committed
//! lengths — on a read-only mount that has to wait, so resuming waits for
//! it too. The lines read since the checkpoint are read again after the
//! pause, with new `seq` values, as after a crash.
//!
//! While paused: no reading and no commit, but scans (new files, renames
//! are still followed), upload completions and expiry of uploaded segments
//! go on — expiry is what frees space. Every [`PROBE_EVERY`] the pipeline
//! tries to repair the segment files, checks the free space, and writes a
//! checkpoint; when all three succeed it resumes.
//!
//! Short of an error, the pipeline also pauses (after a successful commit,
//! so there is nothing to roll back) when the filesystem has less free
//! space than [`Pipeline::reserve`]: the space left is for the seal thread
//! and the checkpoint, so that uploads can go on and free more.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::Pipeline;
use crate::ops::disk::{self, DiskProblem};
use crate::source::tailer::{TailPolicy, Tailer};

/// How often a paused pipeline tries to resume.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why and since when reading is paused.
#[derive(Debug)]
pub struct Blocked {
    pub problem: DiskProblem,
    /// Segment files may still be longer than the checkpoint says.
    pub needs_repair: bool,
    pub last_probe: Instant,
    pub since: Instant,
}

impl Pipeline {
    /// A write failed: pause (and roll back) if the disk is the reason,
    /// else the error stands (crash-only).
    pub(super) fn on_write_error(&mut self, e: anyhow::Error) -> anyhow::Result<()> {
        let Some(problem) = disk::classify_chain(&e) else {
            return Err(e);
        };
        tracing::warn!(error = %format!("{e:#}"), "{problem}: reading paused, rolled back to the last checkpoint (nothing is lost: the lines since are read again when writes succeed); {}", problem.hint());
        self.rollback()?;
        self.block(problem, true);
        // Cutting segments back gives space back at once where it can.
        self.repair();
        Ok(())
    }

    /// Free space under the reserve while running: commit what was read
    /// (little space needed), then pause with nothing to roll back.
    pub(super) fn pause_for_space(&mut self) -> anyhow::Result<()> {
        if let Err(e) = self.commit() {
            return self.on_write_error(e);
        }
        tracing::warn!(reserve = self.reserve(), "{}: free space on the data_dir filesystem is below the reserve; reading paused (nothing is lost); {}", DiskProblem::NoSpace, DiskProblem::NoSpace.hint());
        self.block(DiskProblem::NoSpace, false);
        Ok(())
    }

    fn block(&mut self, problem: DiskProblem, needs_repair: bool) {
        let now = Instant::now();
        let b = self.blocked.get_or_insert(Blocked {
            problem,
            needs_repair,
            last_probe: now,
            since: now,
        });
        b.problem = problem;
        b.needs_repair |= needs_repair;
        b.last_probe = now;
        disk::set_metrics(Some(problem));
        self.readiness.set_data_dir(Some(problem));
    }

    /// Back to the last checkpoint, in memory (module doc).
    fn rollback(&mut self) -> anyhow::Result<()> {
        let cp = self.committed.clone();
        // The same sources built this tailer before: cannot fail now.
        self.tailer = Tailer::new(
            &self.cfg.sources,
            cp.files,
            cp.retired,
            self.first_start,
            TailPolicy::default(),
        )
        .context("rebuilding the tailer from the last checkpoint")?;
        self.tailer.scan();
        // Open records and partial lines belong to the bytes read since the
        // checkpoint, which is at the start of every unfinished record: the
        // files are read again from there.
        self.assemblers = crate::pipeline::records::Files::default();
        self.segments.rollback(cp.segments);
        self.seq_lease_end = cp.seq_lease_end;
        self.tap.discard();
        // Stream events handed over since the checkpoint were cut from the
        // segments with it: restart the stream tasks from the restored
        // cursors (the restored recent ids drop the overlap). The old tasks
        // end at their next send, into the dropped queue.
        self.streams = crate::source::stream::state::Streams::restore(cp.streams);
        if let Some(link) = self.stream_link.clone() {
            self.inbox = None;
            self.start_streams(&link);
        }
        self.changed = true;
        Ok(())
    }

    /// Cut segment files back to the checkpoint; whether that is done.
    fn repair(&mut self) -> bool {
        let Some(b) = self.blocked.as_mut() else {
            return true;
        };
        if !b.needs_repair {
            return true;
        }
        match self.segments.repair_disk() {
            Ok(()) => {
                b.needs_repair = false;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "segments not repaired yet");
                if let Some(p) = disk::classify(&e) {
                    b.problem = p;
                }
                false
            }
        }
    }

    /// While paused, at most every [`PROBE_EVERY`]: try to resume. Returns
    /// whether reading resumed.
    pub(super) fn probe(&mut self) -> anyhow::Result<bool> {
        let Some(b) = self.blocked.as_mut() else {
            return Ok(false);
        };
        if b.last_probe.elapsed() < PROBE_EVERY {
            return Ok(false);
        }
        b.last_probe = Instant::now();
        let before = b.problem;
        let resumed = self.repair()
            && self.free_bytes() >= 2 * self.reserve()
            && {
                match self.commit() {
                    Ok(()) => true,
                    Err(e) => match disk::classify_chain(&e) {
                        Some(p) => {
                            tracing::debug!(error = %format!("{e:#}"), "data_dir still takes no writes");
                            if let Some(b) = self.blocked.as_mut() {
                                b.problem = p;
                            }
                            false
                        }
                        None => return Err(e),
                    },
                }
            };
        if resumed {
            let since = self.blocked.take().map(|b| b.since.elapsed());
            disk::set_metrics(None);
            self.readiness.set_data_dir(None);
            tracing::info!(paused_for = ?since.unwrap_or_default(), "data_dir takes writes again; reading resumed");
        } else if let Some(b) = &self.blocked {
            if b.problem != before {
                let p = b.problem;
                tracing::warn!("{p}: reading stays paused; {}", p.hint());
                disk::set_metrics(Some(p));
                self.readiness.set_data_dir(Some(p));
            }
        }
        Ok(resumed)
    }

    /// Free space the pipeline leaves on the filesystem for the seal thread
    /// (a compressed segment) and the checkpoint: a quarter of
    /// `segments.max_bytes`, within 256 KiB..4 MiB.
    pub(super) fn reserve(&self) -> u64 {
        (self.cfg.segments.max_bytes.0 / 4).clamp(256 << 10, 4 << 20)
    }

    /// Free bytes on data_dir's filesystem (unknown: no limit).
    pub(super) fn free_bytes(&self) -> u64 {
        disk::free_bytes(&self.data_dir).unwrap_or(u64::MAX)
    }

    /// Bytes of compressed segments waiting in the spool (measured at most
    /// once a second: a directory listing).
    pub(super) fn spool_bytes(&mut self) -> u64 {
        let (bytes, at) = self.spool_usage;
        if at.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return bytes;
        }
        let bytes = std::fs::read_dir(&self.spool)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        self.spool_usage = (bytes, Some(Instant::now()));
        bytes
    }
}
