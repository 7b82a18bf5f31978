//! Making segments agree with a checkpoint again: at start (after a crash),
//! and in a running agent after a write to data_dir failed for lack of
//! space or a read-only mount (`ops::disk`).
//!
//! Both come down to the same two steps, kept apart because the second
//! touches the disk and may have to wait for it:
//! - [`SegmentSet::load_states`]: the checkpoint's states in memory;
//! - [`SegmentSet::repair_disk`]: every segment file cut back to its
//!   checkpointed length, files the checkpoint does not know removed. Until
//!   it succeeds nothing may be appended (a partly written line would stay
//!   in the middle of a segment).
//!
//! A rollback ([`SegmentSet::rollback`]) keeps what happened since the
//! checkpoint and does not depend on the lost writes: uploads that
//! completed, segments expired after upload, and upload tickets in flight
//! (a segment being uploaded is not handed out a second time).

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;

use super::{
    layout, remove_unknown, route_of, Segment, SegmentId, SegmentSet, SegmentState, Status,
};
use crate::ops::disk;

impl SegmentSet {
    /// Replace the in-memory states by `states` (segments, routes, what is
    /// staged for dispatch). Writers must be closed already.
    pub(super) fn load_states(&mut self, states: Vec<SegmentState>) {
        self.segs.clear();
        self.routes.clear();
        self.to_dispatch.clear();
        self.staged.clear();
        for st in states {
            if st.status == Status::Sealed {
                // Recorded as sealed in the checkpoint just loaded.
                self.staged.push((st.id, st.generation));
            }
            self.next_id = self.next_id.max(st.id.0 + 1);
            if st.status != Status::Uploaded || layout::per_build(st.tier) {
                self.routes.insert(route_of(&st), st.id);
            }
            self.segs.insert(
                st.id,
                Segment {
                    st,
                    writer: None,
                    dirty: false,
                },
            );
        }
    }

    /// Make the files match the states: cut every segment longer than its
    /// committed length (whatever its status: a build segment reopened by a
    /// late event grows after it was sealed), remove segment files that no
    /// state names. An error that `ops::disk` classifies (no space, read
    /// only) is returned so the caller can retry; others are logged.
    pub fn repair_disk(&mut self) -> io::Result<()> {
        let mut known = HashSet::new();
        for seg in self.segs.values_mut() {
            let st = &mut seg.st;
            let path = self.data_dir.join(&st.path);
            known.insert(path.clone());
            match fs::metadata(&path) {
                Ok(m) if m.len() > st.len => {
                    let f = OpenOptions::new().write(true).open(&path)?;
                    f.set_len(st.len)?;
                    f.sync_all()?;
                }
                Ok(m) if m.len() < st.len => {
                    tracing::error!(path = %path.display(), "segment is shorter than its checkpoint ({} < {}); was it modified by hand?", m.len(), st.len);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if st.len == 0 {
                        continue;
                    }
                    match st.status {
                        // Only expiry deletes a sealed segment's file, and
                        // only after its upload: it is in the bucket.
                        Status::Sealed => {
                            tracing::info!(path = %path.display(), key = %st.key, "sealed segment's file is gone (deleted after its upload, before a checkpoint recorded that); taking it as uploaded");
                            st.status = Status::Uploaded;
                            st.uploaded_ms = Some(st.last_write_ms);
                        }
                        Status::Open => {
                            tracing::error!(path = %path.display(), error = %e, "cannot reopen segment")
                        }
                        Status::Uploaded => {}
                    }
                }
                Err(e) if disk::classify(&e).is_some() => return Err(e),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot reopen segment")
                }
            }
        }
        // Segment files the checkpoint does not know hold only uncommitted
        // events (written after the last checkpoint): remove them.
        for root in layout::LOCAL_ROOTS {
            remove_unknown(&self.data_dir.join(root), &known)?;
        }
        Ok(())
    }

    /// Forget everything appended or sealed since the checkpoint whose
    /// segment states are `committed`, in memory; then call
    /// [`SegmentSet::repair_disk`] (until it succeeds) before appending.
    pub fn rollback(&mut self, committed: Vec<SegmentState>) {
        let mut current: HashMap<SegmentId, Segment> =
            std::mem::take(&mut self.segs).into_iter().collect();
        for seg in current.values_mut() {
            // Closed without flushing: what is buffered is uncommitted.
            if let Some(w) = seg.writer.take() {
                let _ = w.into_parts();
            }
        }
        let mut states = Vec::with_capacity(committed.len());
        for mut st in committed {
            // Only expiry removes a segment, after its upload: gone for good.
            let Some(now) = current.get(&st.id) else {
                continue;
            };
            if now.st.status == Status::Uploaded
                && st.status == Status::Sealed
                && now.st.generation == st.generation
            {
                st.status = Status::Uploaded;
                st.uploaded_ms = now.st.uploaded_ms;
            }
            states.push(st);
        }
        self.load_states(states);
        // A segment whose upload is in flight is not handed out again; its
        // completion still matches (same segment, same generation).
        let in_flight: HashSet<(SegmentId, u32)> = self.tickets.values().copied().collect();
        self.staged.retain(|e| !in_flight.contains(e));
    }

    /// Bytes of all local segments, uploaded ones included.
    pub fn local_bytes(&self) -> u64 {
        self.segs.values().map(|s| s.st.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::config::SegmentsConfig;
    use crate::normalize::time::days_from_civil;

    fn ev(tier: Tier, build: Option<&str>, ts: i64) -> Event {
        let mut e = Event::empty(tier);
        e.ts = ts;
        e.build_id = build.map(str::to_string);
        e.msg = "m".into();
        e
    }

    fn line(e: &Event) -> Vec<u8> {
        let mut v = Vec::new();
        e.write_json(&mut v);
        v
    }

    #[test]
    fn rollback_cuts_uncommitted_bytes_and_keeps_uploads_and_tickets() {
        let d = tempfile::tempdir().unwrap();
        let now = days_from_civil(2026, 3, 4) * DAY_MS;
        let mut s = SegmentSet::new(d.path(), "h1", "", SegmentsConfig::default());
        let (a, b) = (
            ev(Tier::Build, Some("a"), now),
            ev(Tier::Build, Some("b"), now),
        );
        s.append(&a, &line(&a), now).unwrap();
        s.append(&b, &line(&b), now).unwrap();
        s.seal_build("a", &[Tier::Build]);
        s.seal_build("b", &[Tier::Build]);
        s.sync().unwrap();
        // Two checkpoints: both staged, then dispatched.
        assert!(s.take_dispatch(d.path()).is_empty());
        assert!(s.has_staged());
        let jobs = s.take_dispatch(d.path());
        assert_eq!(jobs.len(), 2);
        let committed = s.states();
        // After the checkpoint: "a" uploaded, a new system segment with a
        // line, more bytes in a reopened "b" still buffered.
        assert!(s.uploaded(jobs[0].ticket, now + 1));
        let e = ev(Tier::System, None, now);
        s.append(&e, &line(&e), now).unwrap();
        s.sync().unwrap();
        s.append(&b, &line(&b), now).unwrap();
        s.rollback(committed.clone());
        s.repair_disk().unwrap();
        let st = s.states();
        assert_eq!(st.len(), 2, "the new segment is forgotten");
        assert_eq!(st[0].status, Status::Uploaded, "the upload stays done");
        assert_eq!(st[1].status, Status::Sealed);
        assert_eq!(st[1].len, committed[1].len);
        assert!(!s.has_staged(), "b's upload is in flight: not again");
        assert!(s.uploaded(jobs[1].ticket, now + 2), "its completion counts");
        for x in &st {
            let len = std::fs::metadata(d.path().join(&x.path)).unwrap().len();
            assert_eq!(len, x.len, "{:?}", x.path);
        }
        let system = d.path().join("system");
        assert!(
            !system.exists() || walk(&system).is_empty(),
            "the new segment's file is removed"
        );
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
