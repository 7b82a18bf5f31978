//! Local segments: where events are appended, when a segment is sealed, and
//! what happens to it until it is uploaded and expires.
//!
//! A segment's life: `Open` (appended to) -> `Sealed` (complete; being
//! compressed and uploaded) -> `Uploaded` (kept for `local_retention`, then
//! deleted). A build/deploy segment that gets a late event goes back to
//! `Open` and is uploaded again, complete, under the same key.
//!
//! Durability: [`SegmentSet::sync`] flushes and fsyncs every segment written
//! since the last call; only then does the pipeline write the checkpoint that
//! records the new lengths. At start, [`SegmentSet::restore`] truncates every
//! open segment to its checkpointed length and deletes segment files the
//! checkpoint does not know, so nothing written after the last checkpoint
//! survives a crash — it is re-read from the sources instead.

pub mod layout;
mod recover;
pub mod seal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::config::SegmentsConfig;
use crate::event::{path_component, Event, Tier};
use crate::ops::metrics::{metrics, TierLabel};
use crate::ship::uploader::UploadTicket;
use crate::ship::ObjectMeta;
use layout::Route;
use seal::SealJob;

const DAY_MS: i64 = 86_400_000;
/// How far the wall clock may step back before open segments are sealed
/// ([`SegmentSet::rotate_due`]).
const CLOCK_STEP_BACK_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Sealed,
    Uploaded,
}

/// A segment's identity in the agent's state and the checkpoint; never
/// reused within a data_dir. Not an upload: see [`UploadTicket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

/// What the checkpoint records about a segment (on disk with its own types:
/// `pipeline::checkpoint`).
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentState {
    pub id: SegmentId,
    pub tier: Tier,
    pub group: Option<String>,
    pub day: i64,
    /// Relative to `data_dir`.
    pub path: PathBuf,
    pub key: String,
    /// Committed length in bytes.
    pub len: u64,
    pub lines: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub created_ms: i64,
    pub last_write_ms: i64,
    pub status: Status,
    /// Bumped at every seal, so a stale upload completion is ignored.
    pub generation: u32,
    pub uploaded_ms: Option<i64>,
}

struct Segment {
    st: SegmentState,
    writer: Option<BufWriter<File>>,
    /// Written since the last sync.
    dirty: bool,
}

/// All segments, open or waiting.
pub struct SegmentSet {
    data_dir: PathBuf,
    instance_id: String,
    prefix: String,
    cfg: SegmentsConfig,
    segs: BTreeMap<SegmentId, Segment>,
    routes: HashMap<Route, SegmentId>,
    /// The route of the last event appended and its segment: consecutive
    /// events nearly always share one, and comparing it is cheaper than
    /// hashing it (SipHash) for every event. Cleared wherever `routes`
    /// loses an entry.
    last_route: Option<(Route, SegmentId)>,
    next_id: u64,
    next_ticket: u64,
    /// Upload in flight -> (segment, generation it was sealed at).
    tickets: HashMap<UploadTicket, (SegmentId, u32)>,
    /// Sealed since the last checkpoint.
    to_dispatch: Vec<SegmentId>,
    /// Sealed (at this generation) in the last checkpoint written: handed to
    /// compression and upload after the next one, so that the previous
    /// checkpoint, kept as a fallback, knows every segment ever uploaded
    /// (`pipeline::checkpoint`).
    staged: Vec<(SegmentId, u32)>,
}

impl SegmentSet {
    pub fn new(
        data_dir: &Path,
        instance_id: &str,
        prefix: &str,
        cfg: SegmentsConfig,
    ) -> SegmentSet {
        SegmentSet {
            data_dir: data_dir.to_path_buf(),
            instance_id: instance_id.to_string(),
            prefix: prefix.to_string(),
            cfg,
            segs: BTreeMap::new(),
            routes: HashMap::new(),
            last_route: None,
            next_id: 1,
            next_ticket: 1,
            tickets: HashMap::new(),
            to_dispatch: Vec::new(),
            staged: Vec::new(),
        }
    }

    pub fn set_config(&mut self, cfg: SegmentsConfig) {
        self.cfg = cfg;
    }

    /// Bring segments back after a restart (see the module doc): the
    /// states in memory, then the files made to match them
    /// ([`SegmentSet::repair_disk`]). Sealed segments are dispatched after
    /// the next two checkpoints. On an error from the disk part the states
    /// are in place and `repair_disk` can be retried.
    pub fn restore(&mut self, states: Vec<SegmentState>) -> io::Result<()> {
        self.load_states(states);
        self.repair_disk()
    }

    /// Append one serialized event (`line` ends in `\n`).
    pub fn append(&mut self, ev: &Event, line: &[u8], now_ms: i64) -> io::Result<()> {
        let group = layout::group_id(ev.tier).map(|id| {
            let raw = ev.id(id);
            let c = path_component(raw);
            if raw.is_some() && c.starts_with("_invalid-") {
                metrics().invalid_ids.inc();
            }
            c.into_owned()
        });
        let day = now_ms.div_euclid(DAY_MS);
        let route = Route {
            tier: ev.tier,
            group,
            day: if layout::per_build(ev.tier) { 0 } else { day },
        };
        let id = match &self.last_route {
            Some((last, id)) if *last == route => *id,
            _ => {
                let id = match self.routes.get(&route) {
                    Some(&id) => id,
                    None => self.create(route.clone(), now_ms),
                };
                self.last_route = Some((route, id));
                id
            }
        };
        let seg = self
            .segs
            .get_mut(&id)
            .unwrap_or_else(|| unreachable!("routes point at segments"));
        if seg.st.status != Status::Open {
            // A late event for a build/deploy: reopen, re-upload complete.
            seg.st.status = Status::Open;
            seg.st.uploaded_ms = None;
        }
        if seg.writer.is_none() {
            let path = self.data_dir.join(&seg.st.path);
            let dir = path.parent().unwrap_or(&self.data_dir).to_path_buf();
            let created = !path.exists();
            fs::create_dir_all(&dir)?;
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            if created {
                // The new directory entry must be durable before a
                // checkpoint names the file.
                sync_dir_chain(&dir, &self.data_dir)?;
            }
            seg.writer = Some(BufWriter::with_capacity(64 * 1024, f));
        }
        if let Some(w) = seg.writer.as_mut() {
            w.write_all(line)?;
        }
        let st = &mut seg.st;
        st.len += line.len() as u64;
        st.first_ts = if st.lines == 0 {
            ev.ts
        } else {
            st.first_ts.min(ev.ts)
        };
        st.last_ts = if st.lines == 0 {
            ev.ts
        } else {
            st.last_ts.max(ev.ts)
        };
        st.lines += 1;
        st.last_write_ms = now_ms;
        seg.dirty = true;
        if !layout::per_build(st.tier) && st.len >= self.cfg.max_bytes.0 {
            self.seal(id);
        }
        Ok(())
    }

    fn create(&mut self, route: Route, now_ms: i64) -> SegmentId {
        let id = SegmentId(self.next_id);
        self.next_id += 1;
        let day = now_ms.div_euclid(DAY_MS);
        let ulid = ulid::Ulid::from_datetime(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64),
        )
        .to_string();
        let group = route.group.clone().unwrap_or_default();
        let st = SegmentState {
            id,
            tier: route.tier,
            group: route.group.clone(),
            day,
            path: layout::local_path(route.tier, &group, day, &self.instance_id, &ulid),
            key: layout::object_key(
                &self.prefix,
                route.tier,
                &group,
                day,
                &self.instance_id,
                &ulid,
            ),
            len: 0,
            lines: 0,
            first_ts: 0,
            last_ts: 0,
            created_ms: now_ms,
            last_write_ms: now_ms,
            status: Status::Open,
            generation: 0,
            uploaded_ms: None,
        };
        self.segs.insert(
            id,
            Segment {
                st,
                writer: None,
                dirty: false,
            },
        );
        self.routes.insert(route, id);
        id
    }

    /// Mark a segment sealed; it is dispatched after the next checkpoint.
    fn seal(&mut self, id: SegmentId) {
        let Some(seg) = self.segs.get_mut(&id) else {
            return;
        };
        if seg.st.status != Status::Open || seg.st.lines == 0 {
            return;
        }
        seg.st.status = Status::Sealed;
        seg.st.generation += 1;
        metrics()
            .segment_rotations
            .get_or_create(&TierLabel {
                tier: seg.st.tier.as_str().to_string(),
            })
            .inc();
        if !layout::per_build(seg.st.tier) {
            // Time-rotated tiers start a new segment for the next event.
            self.routes.retain(|_, v| *v != id);
            self.last_route = None;
        }
        self.to_dispatch.push(id);
    }

    /// Seal segments due by age, UTC midnight, or build idleness. Returns
    /// whether any was sealed: the caller must then commit (and so
    /// dispatch) even if no new line arrived.
    pub fn rotate_due(&mut self, now_ms: i64) -> bool {
        let max_age = self.cfg.max_age.get().as_millis() as i64;
        let idle = self.cfg.build_idle_timeout.get().as_millis() as i64;
        let today = now_ms.div_euclid(DAY_MS);
        let due: Vec<SegmentId> = self
            .segs
            .values()
            .filter(|s| s.st.status == Status::Open && s.st.lines > 0)
            .filter(|s| {
                if layout::per_build(s.st.tier) {
                    now_ms - s.st.last_write_ms >= idle
                } else {
                    // A segment "created" more than a minute from now: the
                    // wall clock stepped back. Its age would not reach
                    // max_age until the clock caught up (an hour back holds
                    // it an hour longer), so it is sealed now.
                    now_ms - s.st.created_ms >= max_age
                        || s.st.day != today
                        || s.st.created_ms - now_ms > CLOCK_STEP_BACK_MS
                }
            })
            .map(|s| s.st.id)
            .collect();
        for &id in &due {
            self.seal(id);
        }
        !due.is_empty()
    }

    /// Seal the open build/deploy segments of `build_id` in `tiers`.
    pub fn seal_build(&mut self, build_id: &str, tiers: &[Tier]) {
        let group = path_component(Some(build_id)).into_owned();
        for &tier in tiers {
            let route = Route {
                tier,
                group: Some(group.clone()),
                day: 0,
            };
            if let Some(&id) = self.routes.get(&route) {
                self.seal(id);
            }
        }
    }

    /// Seal everything open (graceful shutdown).
    pub fn seal_all(&mut self) {
        let ids: Vec<SegmentId> = self.segs.keys().copied().collect();
        for id in ids {
            self.seal(id);
        }
    }

    /// Flush and fsync every segment written since the last call.
    pub fn sync(&mut self) -> io::Result<()> {
        for seg in self.segs.values_mut().filter(|s| s.dirty) {
            if let Some(w) = seg.writer.as_mut() {
                w.flush()?;
                w.get_ref().sync_data()?;
            }
            seg.dirty = false;
            if seg.st.status != Status::Open {
                seg.writer = None;
            }
        }
        Ok(())
    }

    /// Call after each checkpoint written: jobs for the segments that this
    /// checkpoint and the one before it both record as sealed (at the same
    /// generation). Those sealed since the one before wait for the next
    /// ([`SegmentSet::has_staged`] says a commit is wanted for them).
    pub fn take_dispatch(&mut self, spool: &Path) -> Vec<SealJob> {
        let mut next: Vec<(SegmentId, u32)> = Vec::new();
        for id in std::mem::take(&mut self.to_dispatch) {
            if let Some(seg) = self.segs.get(&id) {
                let e = (id, seg.st.generation);
                if seg.st.status == Status::Sealed && !next.contains(&e) {
                    next.push(e);
                }
            }
        }
        let ready = std::mem::replace(&mut self.staged, next);
        let mut jobs = Vec::new();
        for (id, generation) in ready {
            let Some(seg) = self.segs.get(&id) else {
                continue;
            };
            if seg.st.status != Status::Sealed || seg.st.generation != generation {
                continue;
            }
            let ticket = UploadTicket(self.next_ticket);
            self.next_ticket += 1;
            self.tickets.insert(ticket, (id, seg.st.generation));
            let st = &seg.st;
            jobs.push(SealJob {
                ticket,
                src: self.data_dir.join(&st.path),
                len: st.len,
                gz: seal::spool_path(spool, ticket),
                key: st.key.clone(),
                meta: ObjectMeta {
                    first_ts: st.first_ts,
                    last_ts: st.last_ts,
                    lines: st.lines,
                    tier: st.tier.as_str().to_string(),
                    instance_id: self.instance_id.clone(),
                },
            });
        }
        jobs
    }

    /// An upload finished; returns whether it changed a segment's state.
    pub fn uploaded(&mut self, ticket: UploadTicket, now_ms: i64) -> bool {
        let Some((id, generation)) = self.tickets.remove(&ticket) else {
            return false;
        };
        let Some(seg) = self.segs.get_mut(&id) else {
            return false;
        };
        if seg.st.status != Status::Sealed || seg.st.generation != generation {
            return false; // reopened by a late event since; a new upload follows
        }
        seg.st.status = Status::Uploaded;
        seg.st.uploaded_ms = Some(now_ms);
        true
    }

    /// Segments sealed in the last checkpoint and not dispatched yet: one
    /// more checkpoint is wanted, even if nothing else changes.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Bytes of segments not uploaded yet (the `max_disk` budget).
    pub fn pending_bytes(&self) -> u64 {
        self.segs
            .values()
            .filter(|s| s.st.status != Status::Uploaded)
            .map(|s| s.st.len)
            .sum()
    }

    /// Delete uploaded segments older than `local_retention`, and the oldest
    /// uploaded ones early while the disk budget is exceeded. Never touches
    /// a segment that was not uploaded. Returns how many were deleted.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        self.expire_to(now_ms, self.cfg.max_disk.0)
    }

    /// [`SegmentSet::expire`], deleting uploaded segments early while all
    /// segments together hold more than `limit` bytes.
    pub fn expire_to(&mut self, now_ms: i64, limit: u64) -> usize {
        let keep = self.cfg.local_retention.get().as_millis() as i64;
        let mut uploaded: Vec<(i64, SegmentId, u64)> = self
            .segs
            .values()
            .filter(|s| s.st.status == Status::Uploaded)
            .map(|s| (s.st.uploaded_ms.unwrap_or(0), s.st.id, s.st.len))
            .collect();
        uploaded.sort();
        let mut total: u64 = self.segs.values().map(|s| s.st.len).sum();
        let mut removed = 0;
        for (at, id, len) in uploaded {
            if now_ms - at < keep && total <= limit {
                continue;
            }
            if let Some(seg) = self.segs.remove(&id) {
                let path = self.data_dir.join(&seg.st.path);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        // Kept (and counted) until it can be deleted: a
                        // read-only data_dir must not leave orphan files.
                        tracing::warn!(path = %path.display(), error = %e, "cannot delete expired segment; will retry");
                        self.segs.insert(id, seg);
                        continue;
                    }
                }
                if let Some(dir) = path.parent() {
                    // Best effort: empty date/project directories go too.
                    let _ = fs::remove_dir(dir);
                    let _ = dir.parent().map(fs::remove_dir);
                }
                self.routes.retain(|_, v| *v != id);
                self.last_route = None;
                total = total.saturating_sub(len);
                removed += 1;
            }
        }
        removed
    }

    pub fn states(&self) -> Vec<SegmentState> {
        self.segs.values().map(|s| s.st.clone()).collect()
    }

    /// Whether any segment is sealed and not yet uploaded.
    pub fn awaiting_upload(&self) -> usize {
        self.segs
            .values()
            .filter(|s| s.st.status == Status::Sealed)
            .count()
    }
}

fn route_of(st: &SegmentState) -> Route {
    Route {
        tier: st.tier,
        group: st.group.clone(),
        day: if layout::per_build(st.tier) {
            0
        } else {
            st.day
        },
    }
}

/// fsync `dir` and its parents up to and including `top`.
fn sync_dir_chain(dir: &Path, top: &Path) -> io::Result<()> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        File::open(cur)?.sync_all()?;
        if cur == top {
            break;
        }
        d = cur.parent();
    }
    Ok(())
}

fn remove_unknown(dir: &Path, known: &HashSet<PathBuf>) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            remove_unknown(&path, known)?;
        } else if path.extension().is_some_and(|x| x == "ndjson") && !known.contains(&path) {
            tracing::info!(path = %path.display(), "removing segment written after the last checkpoint (its lines will be read again)");
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Words that, in a build's lifecycle event, say the build is over.
const END_WORDS: [&str; 17] = [
    "end",
    "ended",
    "finished",
    "complete",
    "completed",
    "done",
    "succeeded",
    "success",
    "failed",
    "failure",
    "error",
    "errored",
    "cancelled",
    "canceled",
    "aborted",
    "timeout",
    "timed_out",
];

/// Which build/deploy segments an event closes, if any: a `meta` or
/// `lifecycle` event (or any event of the lifecycle tier) with a `buildId`
/// whose `data.status`/`phase`/`state`/`event`/`stage` is an end word.
pub fn build_end(ev: &Event) -> Option<(&str, Vec<Tier>)> {
    let build_id = ev.build_id.as_deref()?;
    if !(ev.kind == "meta" || ev.kind == "lifecycle" || ev.tier == Tier::Lifecycle) {
        return None;
    }
    let data = ev.data.as_ref()?;
    let ended = ["status", "phase", "state", "event", "stage"]
        .iter()
        .any(|k| {
            data.get(*k)
                .and_then(|v| v.as_str())
                .is_some_and(|s| END_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w)))
        });
    if !ended {
        return None;
    }
    let tiers = match ev.tier {
        Tier::Build => vec![Tier::Build],
        Tier::Deploy => vec![Tier::Deploy],
        _ => match data
            .get("tier")
            .and_then(|v| v.as_str())
            .and_then(Tier::parse)
        {
            Some(t @ (Tier::Build | Tier::Deploy)) => vec![t],
            _ => vec![Tier::Build, Tier::Deploy],
        },
    };
    Some((build_id, tiers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, HumanDuration};
    use crate::normalize::time::days_from_civil;

    const DAY: i64 = DAY_MS;

    fn set(dir: &Path, cfg: SegmentsConfig) -> SegmentSet {
        SegmentSet::new(dir, "h1", "", cfg)
    }

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

    fn statuses(s: &SegmentSet) -> Vec<Status> {
        s.states().iter().map(|x| x.status).collect()
    }

    #[test]
    fn size_age_and_midnight_rotation() {
        let d = tempfile::tempdir().unwrap();
        let noon = days_from_civil(2026, 1, 2) * DAY + DAY / 2;
        let cfg = SegmentsConfig {
            max_bytes: ByteSize(1000),
            max_age: HumanDuration::secs(3600),
            ..Default::default()
        };
        let mut s = set(d.path(), cfg);
        let e = ev(Tier::System, None, noon);
        let l = line(&e);
        while s.states().iter().all(|x| x.status == Status::Open) {
            s.append(&e, &l, noon).unwrap();
        }
        assert_eq!(statuses(&s), vec![Status::Sealed], "sealed at max_bytes");
        s.append(&e, &l, noon).unwrap();
        assert!(!s.rotate_due(noon + 3_599_000));
        assert_eq!(statuses(&s)[1], Status::Open);
        assert!(s.rotate_due(noon + 3_600_000), "reports the seal");
        assert_eq!(statuses(&s)[1], Status::Sealed, "sealed at max_age");
        // Opened at 23:59:59, sealed at the first check after midnight.
        let late = noon + DAY / 2 - 1000;
        s.append(&e, &l, late).unwrap();
        assert!(!s.rotate_due(late + 500));
        assert_eq!(statuses(&s)[2], Status::Open);
        assert!(s.rotate_due(late + 1000));
        assert_eq!(statuses(&s)[2], Status::Sealed, "sealed at UTC midnight");
        let st = &s.states()[2];
        assert!(st.path.starts_with("system/2026-01-02"), "{:?}", st.path);
        assert!(st.key.starts_with("system/2026/01/02/h1-"), "{}", st.key);
    }

    #[test]
    fn build_segments_seal_on_end_event_and_reopen_for_late_events() {
        let d = tempfile::tempdir().unwrap();
        let now = days_from_civil(2026, 3, 4) * DAY;
        let mut s = set(d.path(), SegmentsConfig::default());
        let e = ev(Tier::Build, Some("b-1"), now);
        s.append(&e, &line(&e), now).unwrap();
        let mut end = ev(Tier::Build, Some("b-1"), now);
        end.kind = "meta".into();
        end.data = Some(
            serde_json::json!({"status": "succeeded"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let (build, tiers) = build_end(&end).expect("end event");
        s.append(&end, &line(&end), now).unwrap();
        s.seal_build(build, &tiers);
        assert_eq!(statuses(&s), vec![Status::Sealed]);
        s.sync().unwrap();
        // Dispatched after the second checkpoint that records it sealed.
        assert!(s.take_dispatch(d.path()).is_empty());
        let jobs = s.take_dispatch(d.path());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].key, "builds/b-1.ndjson.gz");
        assert_eq!(jobs[0].meta.lines, 2);
        // A late event before the upload completes: the stale completion is
        // ignored, the segment is open again and uploads again, complete.
        s.append(&e, &line(&e), now + 1).unwrap();
        assert!(!s.uploaded(jobs[0].ticket, now + 2));
        assert_eq!(statuses(&s), vec![Status::Open]);
        s.rotate_due(now + 1 + 600_000);
        s.sync().unwrap();
        // Dispatched after the second checkpoint that records it sealed.
        assert!(s.take_dispatch(d.path()).is_empty());
        let jobs = s.take_dispatch(d.path());
        assert_eq!(
            (jobs[0].key.as_str(), jobs[0].meta.lines),
            ("builds/b-1.ndjson.gz", 3)
        );
        assert!(s.uploaded(jobs[0].ticket, now + 3));
        assert_eq!(statuses(&s), vec![Status::Uploaded]);
        // Not an end: no status, or not a lifecycle/meta event.
        let mut not_end = end.clone();
        not_end.data = Some(
            serde_json::json!({"status": "running"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(build_end(&not_end).is_none());
        let mut plain = end.clone();
        plain.kind = "line".into();
        assert!(build_end(&plain).is_none());
    }

    #[test]
    fn restore_truncates_uncommitted_bytes_and_removes_unknown_segments() {
        let d = tempfile::tempdir().unwrap();
        let now = days_from_civil(2026, 3, 4) * DAY;
        let mut s = set(d.path(), SegmentsConfig::default());
        let e = ev(Tier::System, None, now);
        s.append(&e, &line(&e), now).unwrap();
        s.sync().unwrap();
        let committed = s.states();
        // After the "checkpoint": more bytes, and a brand-new segment.
        s.append(&e, &line(&e), now).unwrap();
        let b = ev(Tier::Build, Some("b-2"), now);
        s.append(&b, &line(&b), now).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut r = set(d.path(), SegmentsConfig::default());
        r.restore(committed.clone()).unwrap();
        let path = d.path().join(&committed[0].path);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed[0].len);
        assert!(!d
            .path()
            .join("builds")
            .join("2026-03-04")
            .join("b-2.ndjson")
            .exists());
        // Appending continues in the same segment.
        r.append(&e, &line(&e), now).unwrap();
        assert_eq!(r.states().len(), 1);
        assert_eq!(r.states()[0].lines, 2);
    }

    #[test]
    fn expiry_keeps_what_was_never_uploaded() {
        let d = tempfile::tempdir().unwrap();
        let now = days_from_civil(2026, 3, 4) * DAY;
        let cfg = SegmentsConfig {
            local_retention: HumanDuration::secs(3600),
            ..Default::default()
        };
        let mut s = set(d.path(), cfg);
        for b in ["a", "b"] {
            let e = ev(Tier::Build, Some(b), now);
            s.append(&e, &line(&e), now).unwrap();
            s.seal_build(b, &[Tier::Build]);
        }
        s.sync().unwrap();
        // Dispatched after the second checkpoint that records it sealed.
        assert!(s.take_dispatch(d.path()).is_empty());
        let jobs = s.take_dispatch(d.path());
        assert!(s.uploaded(jobs[0].ticket, now));
        assert_eq!(s.expire(now + 3_599_000), 0);
        assert_eq!(s.expire(now + 3_600_000), 1);
        assert_eq!(
            statuses(&s),
            vec![Status::Sealed],
            "the never-uploaded one stays"
        );
        assert!(d.path().join(&s.states()[0].path).exists());
        assert_eq!(s.pending_bytes(), s.states()[0].len);
    }
}
