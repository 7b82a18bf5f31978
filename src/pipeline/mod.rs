//! The write path: one thread that reads sources, normalizes, redacts,
//! appends to segments and commits checkpoints.
//!
//! One thread owns all of it, so the checkpoint is trivially consistent:
//! between two chunks nothing is in flight, and a commit there records
//! source offsets and segment lengths that describe exactly the same lines.
//! Everything slow happens elsewhere: compression on the seal thread,
//! uploads and alert delivery on the async runtime. File I/O here is
//! blocking on purpose — this is not an async thread.
//!
//! Failure policy is crash-only: if a segment write fails (I/O error) the
//! pipeline stops *without* committing, and the next start resumes from the
//! last checkpoint. Nothing is skipped to keep going. A full or read-only
//! data_dir is the exception, an expected condition waited out in process
//! with the same rollback a restart would do (`disk`).

pub mod checkpoint;
mod disk;
pub mod line;
pub mod multiline;
pub mod records;
mod streams;
pub mod tap;

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;

use crate::alert::{AlertBatch, AlertHandle};
use crate::config::Config;
use crate::event::{Event, PerTier, Tier};
use crate::normalize::Normalizer;
use crate::ops::metrics::{metrics, SourceLabel, TierLabel};
use crate::ops::shutdown::Shutdown;
use crate::ops::Readiness;
use crate::redact::Redactor;
use crate::segment::{self, seal::SealJob, SegmentSet};
use crate::ship::uploader::{UploadTicket, Uploader};
use crate::source::file::FileKey;
use crate::source::stream;
use crate::source::tailer::{TailPolicy, Tailer, CHUNK, READ_BUDGET};
use crate::source::watch::{Change, Watcher};
use checkpoint::Checkpoint;
use line::{LinePath, Stream};
use records::RecordSpec;

/// `seq` values leased per checkpoint (a restart skips the unused rest).
pub const SEQ_LEASE: u64 = 1 << 26;
/// Most events one `read_file` call can emit: its byte budget plus one
/// line, plus the events that may wait behind an open record.
const MAX_LINES_PER_READ: u64 = READ_BUDGET as u64 + 1 + records::HELD_EVENTS as u64 + 1;
/// How often the globs are re-evaluated even without events.
const SCAN_INTERVAL: Duration = Duration::from_secs(2);
const EXPIRE_INTERVAL: Duration = Duration::from_secs(10);
/// After a quiet wait, changes are gathered this long (at most a quarter
/// of `commit_interval`, and never past the next commit) before the files
/// are read: an application that writes each line on its own makes
/// thousands of changes a second, and a read pass per change cost 3.5-4x
/// the CPU per byte of reads 50 ms apart (BENCHMARKS.md, "Live mode with
/// an application that writes line by line"). Lines read before a commit are in
/// it either way, so this adds no latency to durability or the live tail
/// beyond these few milliseconds.
const GATHER_CHANGES: Duration = Duration::from_millis(50);

/// Everything the pipeline needs from the outside.
pub struct Parts {
    pub config: Config,
    pub redactor: Arc<Redactor>,
    pub alerts: AlertHandle,
    pub uploader: Uploader,
    /// Upload tickets completed by the uploader.
    pub upload_done: tokio::sync::mpsc::UnboundedReceiver<UploadTicket>,
    pub shutdown: Shutdown,
    /// Valid new configs to apply (hot reload).
    pub reload: Option<mpsc::Receiver<Config>>,
    /// Called once sources are watched and the first scan is done.
    pub on_ready: Option<Box<dyn FnOnce() + Send>>,
    /// Set to the wall clock (ms) at every loop turn: the watchdog's proof
    /// of progress.
    pub heartbeat: Option<Arc<AtomicI64>>,
    /// Durable events for live readers (the API's tail).
    pub tap: tap::Tap,
    /// Told when data_dir takes no writes (reading paused).
    pub readiness: Readiness,
    /// Where event-stream sources run their HTTP side (SPEC §11); `None`:
    /// they are not started (tests of the file path).
    pub streams: Option<stream::Link>,
}

/// Wall clock in epoch milliseconds, as the agent sees it.
pub fn now_ms() -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    wall + test_clock_offset_ms()
}

/// Debug builds only: `LOGSHIP_TEST_CLOCK_OFFSET_MS` shifts [`now_ms`] by
/// a fixed amount, read once at the first call. The black-box tests run the
/// debug binary and use it to start the agent seconds before UTC midnight,
/// so the midnight rotation is observed without waiting for a real one. An
/// offset (not a frozen clock) keeps time moving, so everything that
/// measures intervals behaves as in production; the `Instant`-based loop
/// timers are not affected. `LOGSHIP_TEST_CLOCK_FILE` names a file holding
/// a further offset, re-read at most every 50 ms: a test steps the wall
/// clock of a running agent by rewriting it. Release builds never read
/// either.
fn test_clock_offset_ms() -> i64 {
    #[cfg(debug_assertions)]
    {
        use std::sync::Mutex;
        static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
        static FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
        static STEP: Mutex<Option<(Instant, i64)>> = Mutex::new(None);
        let fixed = *OFFSET.get_or_init(|| {
            std::env::var("LOGSHIP_TEST_CLOCK_OFFSET_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        });
        let Some(file) =
            FILE.get_or_init(|| std::env::var_os("LOGSHIP_TEST_CLOCK_FILE").map(PathBuf::from))
        else {
            return fixed;
        };
        let Ok(mut step) = STEP.lock() else {
            return fixed;
        };
        match *step {
            Some((read, v)) if read.elapsed() < Duration::from_millis(50) => fixed + v,
            _ => {
                let v = fs::read_to_string(file)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                *step = Some((Instant::now(), v));
                fixed + v
            }
        }
    }
    #[cfg(not(debug_assertions))]
    {
        0
    }
}

struct Pipeline {
    cfg: Config,
    data_dir: PathBuf,
    spool: PathBuf,
    instance_id: String,
    tailer: Tailer,
    normalizers: Vec<Normalizer>,
    /// Per source: partial-line joining and multiline grouping.
    record_specs: Vec<RecordSpec>,
    /// Per file with lines that went through its source's record steps.
    assemblers: records::Files,
    source_bytes: Vec<Counter>,
    redactor: Arc<Redactor>,
    alerts: AlertHandle,
    segments: SegmentSet,
    sealer: mpsc::Sender<SealJob>,
    upload_done: tokio::sync::mpsc::UnboundedReceiver<UploadTicket>,
    watcher: Watcher,
    changes: mpsc::Receiver<Change>,
    seq_next: u64,
    seq_lease_end: u64,
    /// Something changed since the last checkpoint.
    changed: bool,
    written: PerTier<u64>,
    backpressure: bool,
    scratch: Vec<u8>,
    heartbeat: Option<Arc<AtomicI64>>,
    tap: tap::Collector,
    /// The last checkpoint known to be on disk: what a rollback returns to.
    committed: Checkpoint,
    /// No checkpoint was ever written (`read_from = "end"` still applies).
    first_start: bool,
    /// Reading paused: data_dir takes no writes (`disk`).
    blocked: Option<disk::Blocked>,
    readiness: Readiness,
    /// Spool bytes and when they were measured.
    spool_usage: (u64, Option<Instant>),
    /// A reloaded config not applied yet (it came while paused).
    pending_reload: Option<Config>,
    /// Event-stream positions, committed with the segments.
    streams: stream::state::Streams,
    /// Lines from the event-stream tasks.
    inbox: Option<stream::Inbox>,
    /// The last turn found stream lines queued: no waiting.
    streams_behind: bool,
    /// Lets the stream tasks end the loop's wait.
    wake: mpsc::Sender<Change>,
    /// Where the stream tasks run: kept to restart them after a rollback.
    stream_link: Option<stream::Link>,
    _lock: File,
}

/// Run the pipeline until shutdown. Blocking: call on a dedicated thread.
pub fn run(parts: Parts) -> anyhow::Result<()> {
    let Parts {
        config,
        redactor,
        alerts,
        uploader,
        upload_done,
        shutdown,
        reload,
        on_ready,
        heartbeat,
        tap,
        readiness,
        streams,
    } = parts;
    let mut p = Pipeline::start(config, redactor, alerts, uploader, upload_done, readiness)?;
    if let Some(link) = streams {
        p.start_streams(&link);
        p.stream_link = Some(link);
    }
    p.heartbeat = heartbeat;
    p.tap = tap.collector();
    if let Some(ready) = on_ready {
        ready();
    }
    p.main_loop(&shutdown, reload.as_ref())?;
    p.drain_for_shutdown()
}

impl Pipeline {
    fn start(
        cfg: Config,
        redactor: Arc<Redactor>,
        alerts: AlertHandle,
        uploader: Uploader,
        upload_done: tokio::sync::mpsc::UnboundedReceiver<UploadTicket>,
        readiness: Readiness,
    ) -> anyhow::Result<Pipeline> {
        let data_dir = cfg.agent.data_dir.clone();
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
        let lock = lock_data_dir(&data_dir)?;
        let instance_id = cfg.agent.instance_id();
        let loaded = checkpoint::load_with_fallback(&data_dir)?;
        let first_start = loaded.is_none();
        let cp = match loaded {
            Some((mut cp, checkpoint::Origin::Previous)) => {
                // Values of the lost checkpoint's lease may have been handed
                // out (a lease is taken by a checkpoint of its own, so it
                // ends at most one lease after the previous one's).
                cp.seq_lease_end += SEQ_LEASE;
                cp
            }
            Some((cp, checkpoint::Origin::Current)) => cp,
            None => Checkpoint::new(&instance_id),
        };
        if !first_start && cp.instance_id != instance_id {
            tracing::warn!(old = %cp.instance_id, new = %instance_id, "instance_id changed since the last run; new events use the new id");
        }
        let committed = cp.clone();
        let tailer = Tailer::new(
            &cfg.sources,
            cp.files,
            cp.retired,
            first_start,
            TailPolicy::default(),
        )?;
        let mut segments = SegmentSet::new(
            &data_dir,
            &instance_id,
            cfg.bucket.key_prefix(),
            cfg.segments.clone(),
        );
        // A full or read-only disk leaves segments to repair before reading.
        let unrepaired = match segments.restore(cp.segments) {
            Ok(()) => None,
            Err(e) => match crate::ops::disk::classify(&e) {
                Some(problem) => Some((problem, e)),
                None => return Err(anyhow::Error::new(e).context("restoring segments")),
            },
        };
        // Compressed files from before a restart are made again: stale ones go.
        let spool = data_dir.join("spool");
        let _ = fs::remove_dir_all(&spool);
        if let Err(e) = fs::create_dir_all(&spool) {
            // The seal thread makes it when it can.
            if crate::ops::disk::classify(&e).is_none() {
                return Err(e.into());
            }
        }
        let sealer = segment::seal::spawn_sealer(cfg.segments.compression_level, uploader)?;
        let (tx, changes) = mpsc::channel();
        let wake = tx.clone();
        let watcher = Watcher::new(tx);
        let mut p = Pipeline {
            normalizers: normalizers(&cfg, &instance_id),
            record_specs: cfg.sources.iter().map(RecordSpec::new).collect(),
            assemblers: records::Files::default(),
            source_bytes: source_counters(&cfg),
            cfg,
            data_dir,
            spool,
            instance_id,
            tailer,
            redactor,
            alerts,
            segments,
            sealer,
            upload_done,
            watcher,
            changes,
            seq_next: cp.seq_lease_end,
            seq_lease_end: cp.seq_lease_end,
            changed: true,
            written: PerTier::default(),
            backpressure: false,
            scratch: Vec::new(),
            heartbeat: None,
            tap: tap::Tap::default().collector(),
            committed,
            first_start,
            blocked: None,
            readiness,
            spool_usage: (0, None),
            pending_reload: None,
            streams: stream::state::Streams::restore(cp.streams),
            inbox: None,
            streams_behind: false,
            wake,
            stream_link: None,
            _lock: lock,
        };
        p.watcher.ensure(&p.tailer.watch_roots());
        p.tailer.scan();
        if let Some((problem, e)) = unrepaired {
            p.on_write_error(
                anyhow::Error::new(e).context(format!("restoring segments ({problem})")),
            )?;
        } else if let Err(e) = p.lease_seq() {
            p.on_write_error(e)?;
        }
        Ok(p)
    }

    fn main_loop(
        &mut self,
        shutdown: &Shutdown,
        reload: Option<&mpsc::Receiver<Config>>,
    ) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(CHUNK);
        let mut dirty: HashSet<FileKey> = self.tailer.keys().into_iter().collect();
        let mut last_scan = Instant::now();
        let mut last_poll = Instant::now();
        let mut last_fast_poll = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_read_pass = Instant::now();
        let mut last_expire = Instant::now() - EXPIRE_INTERVAL;
        while !shutdown.is_set() {
            if let Some(hb) = &self.heartbeat {
                hb.store(now_ms(), Ordering::Relaxed);
            }
            if self.blocked.is_none() {
                let next = self
                    .pending_reload
                    .take()
                    .or_else(|| reload.and_then(|r| r.try_recv().ok()));
                if let Some(new_cfg) = next {
                    // Its first step is a commit: a full disk keeps it for later.
                    match self.commit() {
                        Ok(()) => self.apply(new_cfg)?,
                        Err(e) => {
                            self.pending_reload = Some(new_cfg);
                            self.on_write_error(e)?;
                        }
                    }
                    dirty.extend(self.tailer.keys());
                }
            }
            // Wait for a change, at most until something periodic is due.
            let commit_every = self.cfg.segments.commit_interval.get();
            // Files left with unread bytes (their read budget ran out) are
            // read again at once: no waiting while catching up.
            let idle = dirty.is_empty() && !self.streams_behind;
            let wait = if idle || self.backpressure || self.blocked.is_some() {
                Duration::from_millis(100).min(
                    self.watcher
                        .poll_interval
                        .saturating_sub(last_poll.elapsed()),
                )
            } else {
                Duration::ZERO
            };
            let mut rescan = false;
            let first = self.changes.recv_timeout(wait).ok();
            if first.is_some() && idle && !self.backpressure && self.blocked.is_none() {
                let gap = GATHER_CHANGES.min(commit_every / 4);
                let gather = gap
                    .saturating_sub(last_read_pass.elapsed())
                    .min(commit_every.saturating_sub(last_commit.elapsed()));
                if !gather.is_zero() {
                    std::thread::sleep(gather);
                }
            }
            let changes: Vec<Change> = first
                .into_iter()
                .chain(self.changes.try_iter())
                .filter(|c| !matches!(c, Change::Wake))
                .collect();
            if !changes.is_empty() {
                let index = self.tailer.path_index();
                for change in changes {
                    match change {
                        Change::Path(path, structural) => match index.get(path.as_path()) {
                            Some(&key) if !structural => {
                                dirty.insert(key);
                            }
                            _ => rescan = true,
                        },
                        Change::Rescan => rescan = true,
                        Change::Wake => {}
                    }
                }
            }
            let now = Instant::now();
            if rescan || now.duration_since(last_scan) >= SCAN_INTERVAL {
                self.watcher.ensure(&self.tailer.watch_roots());
                self.tailer.scan();
                last_scan = now;
                dirty.extend(self.tailer.keys());
            }
            if now.duration_since(last_poll) >= self.watcher.poll_interval {
                last_poll = now;
                dirty.extend(self.tailer.keys());
                self.tailer.reap(now);
            } else if self.watcher.polls_some()
                && now.duration_since(last_fast_poll) >= crate::source::watch::POLL_WITHOUT
            {
                // Directories that could not be watched: only their files.
                last_fast_poll = now;
                let index = self.tailer.path_index();
                dirty.extend(
                    index
                        .iter()
                        .filter(|(p, _)| self.watcher.is_polled(p))
                        .map(|(_, &k)| k),
                );
            }
            if self.blocked.is_some() && self.probe()? {
                dirty.extend(self.tailer.keys());
            }
            self.make_room();
            self.check_backpressure();
            if self.blocked.is_none()
                && !self.backpressure
                && !dirty.is_empty()
                && self.free_bytes() < self.reserve()
            {
                self.pause_for_space()?;
            }
            if self.blocked.is_none() && !self.backpressure {
                if !dirty.is_empty() {
                    last_read_pass = Instant::now();
                }
                let mut again = Vec::new();
                for key in dirty.drain() {
                    if let Err(e) = self.lease_seq().and_then(|()| self.read(key, &mut buf)) {
                        self.on_write_error(e)?;
                        break; // all files are read again after the pause
                    }
                    if self.tailer.has_more(key) {
                        again.push(key);
                    }
                    if self.check_backpressure() {
                        break; // the rest are read again at the next poll
                    }
                }
                dirty.extend(again);
                if self.blocked.is_some() {
                    dirty.extend(self.tailer.keys());
                } else if !self.backpressure {
                    if let Err(e) = self.lease_seq().and_then(|()| self.read_streams()) {
                        self.on_write_error(e)?;
                        dirty.extend(self.tailer.keys());
                    }
                }
            }
            self.tick_records(false)?;
            self.collect_uploads();
            // A segment can come due while its file is idle: sealing it is
            // a change to commit, or it would wait for the next line.
            if self.segments.rotate_due(now_ms()) {
                self.changed = true;
            }
            if self.blocked.is_none()
                && (self.changed || self.segments.has_staged())
                && last_commit.elapsed() >= commit_every
            {
                if let Err(e) = self.commit() {
                    self.on_write_error(e)?;
                }
                last_commit = Instant::now();
            }
            if last_expire.elapsed() >= EXPIRE_INTERVAL {
                last_expire = Instant::now();
                if self.segments.expire(now_ms()) > 0 {
                    self.changed = true;
                }
                if self.prune_streams() > 0 {
                    self.changed = true;
                }
            }
            self.flush_counters();
        }
        Ok(())
    }

    /// Read new lines of one file through the whole write path.
    fn read(&mut self, key: FileKey, buf: &mut Vec<u8>) -> anyhow::Result<()> {
        let now = Instant::now();
        let wall = now_ms();
        // Stay within the disk budget (all local segments and the spool) and
        // the filesystem's free space less the reserve: an event takes about
        // twice its raw line in NDJSON, so read at most half of what is left.
        let used = self.segments.local_bytes() + self.spool_bytes();
        let room = self
            .cfg
            .segments
            .max_disk
            .0
            .saturating_sub(used)
            .min(self.free_bytes().saturating_sub(self.reserve()));
        let budget = usize::try_from(room / 2).unwrap_or(usize::MAX);
        let Split {
            tailer,
            normalizers,
            record_specs,
            assemblers,
            redactor,
            seq_next,
            mut sink,
        } = self.split(wall);
        let mut ev = Event::empty(Tier::System);
        let mut source_idx = None;
        let consumed = tailer.read_file(key, buf, now, budget, &mut |f, line| {
            if sink.failed.is_some() {
                return;
            }
            source_idx = Some(f.source_idx);
            if record_specs[f.source_idx].needed() {
                let mut shared = records::Shared {
                    normalizers,
                    specs: record_specs,
                    redactor,
                    next_seq: seq_next,
                    now,
                    wall_ms: wall,
                };
                assemblers.push(f, line, &mut shared, &mut |ev| sink.write(ev));
                return;
            }
            let path = LinePath {
                normalizer: &normalizers[f.source_idx],
                redactor,
            };
            let stream = Stream {
                path_ids: &f.path_ids,
                redact: &mut f.st.redact,
            };
            path.event(line, stream, wall, seq_next, &mut ev);
            sink.write(&ev);
        });
        write_result(sink.failed)?;
        match consumed {
            Ok(0) => {}
            Ok(n) => {
                self.changed = true;
                if let Some(c) = source_idx.and_then(|i| self.source_bytes.get(i)) {
                    c.inc_by(n as u64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "read failed; will retry"),
        }
        Ok(())
    }

    /// Complete records that waited their timeout (with `all`, every open
    /// one), and forget those of files gone or truncated.
    fn tick_records(&mut self, all: bool) -> anyhow::Result<()> {
        if self.assemblers.is_empty() {
            return Ok(());
        }
        self.lease_seq()?;
        let wall = now_ms();
        let Split {
            tailer,
            normalizers,
            record_specs,
            assemblers,
            redactor,
            seq_next,
            mut sink,
        } = self.split(wall);
        let mut shared = records::Shared {
            normalizers,
            specs: record_specs,
            redactor,
            next_seq: seq_next,
            now: Instant::now(),
            wall_ms: wall,
        };
        let before = *shared.next_seq;
        assemblers.tick(tailer, all, &mut shared, &mut |ev| sink.write(ev));
        let emitted = *shared.next_seq != before;
        let failed = sink.failed;
        if emitted {
            self.changed = true;
        }
        write_result(failed)
    }

    /// Make sure the next read cannot run past the leased `seq` range.
    fn lease_seq(&mut self) -> anyhow::Result<()> {
        if self.seq_lease_end - self.seq_next < MAX_LINES_PER_READ {
            self.seq_lease_end = self.seq_next + SEQ_LEASE;
            self.commit()?;
        }
        Ok(())
    }

    /// Make appended events durable, record where everything stands, and
    /// only then hand newly sealed segments to compression and upload.
    fn commit(&mut self) -> anyhow::Result<()> {
        self.segments.sync().context("fsync of segments failed")?;
        let (mut files, retired) = self.tailer.states();
        // Unfinished records are read again after a crash, from their start.
        self.assemblers.patch(&mut files);
        let cp = Checkpoint {
            instance_id: self.instance_id.clone(),
            seq_lease_end: self.seq_lease_end,
            files,
            retired,
            segments: self.segments.states(),
            streams: self.streams.checkpoint(),
        };
        checkpoint::store(&self.data_dir, &cp, &mut self.scratch)
            .context("writing the checkpoint failed")?;
        self.committed = cp;
        self.first_start = false;
        self.changed = false;
        self.tap.publish();
        for job in self.segments.take_dispatch(&self.spool) {
            // The seal thread lives as long as the pipeline.
            let _ = self.sealer.send(job);
        }
        Ok(())
    }

    fn collect_uploads(&mut self) {
        let now = now_ms();
        while let Ok(ticket) = self.upload_done.try_recv() {
            let _ = fs::remove_file(segment::seal::spool_path(&self.spool, ticket));
            if self.segments.uploaded(ticket, now) {
                self.changed = true;
            }
        }
    }

    /// Near `max_disk`, delete uploaded segments (oldest first) now rather
    /// than at the next expiry round: catching up must not outrun deletion.
    /// Leaves room for one full read (or half the budget, if smaller).
    fn make_room(&mut self) {
        let max = self.cfg.segments.max_disk.0;
        let headroom = (2 * READ_BUDGET as u64).min(max / 2);
        let spool = self.spool_bytes();
        if self.segments.local_bytes() + spool + headroom > max
            && self.segments.local_bytes() > self.segments.pending_bytes()
            && self
                .segments
                .expire_to(now_ms(), max.saturating_sub(headroom + spool))
                > 0
        {
            self.changed = true;
        }
    }

    /// Whether reading must pause for the disk budget (and say so once).
    fn check_backpressure(&mut self) -> bool {
        let full =
            self.segments.pending_bytes() + self.spool_bytes() >= self.cfg.segments.max_disk.0;
        if full != self.backpressure {
            self.backpressure = full;
            metrics().backpressure.set(i64::from(full));
            if full {
                tracing::warn!(max_disk = %self.cfg.segments.max_disk, "segments waiting for upload reached segments.max_disk; reading paused (the source files are the buffer)");
            } else {
                tracing::info!("upload backlog below segments.max_disk; reading resumed");
            }
        }
        full
    }

    fn flush_counters(&mut self) {
        for (tier, n) in self.written.iter_mut() {
            if *n > 0 {
                metrics()
                    .events_written
                    .get_or_create(&TierLabel {
                        tier: tier.as_str().to_string(),
                    })
                    .inc_by(*n);
                *n = 0;
            }
        }
    }

    /// Apply a validated new config without losing or repeating a line:
    /// followed files keep their offsets (sources are matched by name). If
    /// the new pieces cannot be built, the running config stays.
    fn apply(&mut self, cfg: Config) -> anyhow::Result<()> {
        // A new `[agent]` never gets here: the reloader refuses a config
        // that changes a restart-only key (`ops::reload::restart_only_changes`).
        let redactor = match Redactor::new(&cfg.redaction) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::error!(error = %e, "reloaded redaction config rejected; keeping the running config");
                return Ok(());
            }
        };
        // Open records are completed as they stand (their sources may have
        // changed), then committed, so the new tailer starts from exactly
        // these states.
        self.tick_records(true)?;
        self.commit()?;
        let (files, retired) = self.tailer.states();
        let tailer = match Tailer::new(&cfg.sources, files, retired, false, TailPolicy::default()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "reloaded sources rejected; keeping the running config");
                return Ok(());
            }
        };
        self.tailer = tailer;
        self.redactor = redactor;
        self.normalizers = normalizers(&cfg, &self.instance_id);
        self.record_specs = cfg.sources.iter().map(RecordSpec::new).collect();
        self.assemblers = records::Files::default();
        self.source_bytes = source_counters(&cfg);
        self.segments.set_config(cfg.segments.clone());
        self.watcher.ensure(&self.tailer.watch_roots());
        self.tailer.scan();
        self.cfg = Config {
            agent: self.cfg.agent.clone(),
            ..cfg
        };
        tracing::info!("configuration reloaded");
        release_freed_memory();
        Ok(())
    }

    /// Graceful stop: seal everything, upload within the timeout, persist.
    fn drain_for_shutdown(mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.cfg.agent.shutdown_timeout.get();
        if let Some(b) = self.blocked.as_mut() {
            b.last_probe = Instant::now() - disk::PROBE_EVERY;
        }
        if self.blocked.is_some() && !self.probe()? {
            let problem = self.blocked.as_ref().map(|b| b.problem);
            anyhow::bail!(
                "stopping while data_dir takes no writes ({}); the last checkpoint is kept and the next start resumes from it (nothing is lost)",
                problem.map_or_else(String::new, |p| p.to_string())
            );
        }
        self.segments.seal_all();
        self.commit()?;
        // A second checkpoint, after which the sealed segments are dispatched.
        self.commit()?;
        while self.segments.awaiting_upload() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            self.collect_uploads();
        }
        self.flush_counters();
        self.commit()?;
        let left = self.segments.awaiting_upload();
        if left > 0 {
            tracing::warn!("{left} sealed segments not uploaded within agent.shutdown_timeout; they are uploaded at the next start");
        }
        Ok(())
    }
}

/// The pipeline borrowed apart for one pass of the write path: what makes
/// events from lines, and the [`Sink`] they go to.
struct Split<'a> {
    tailer: &'a mut Tailer,
    normalizers: &'a [Normalizer],
    record_specs: &'a [RecordSpec],
    assemblers: &'a mut records::Files,
    redactor: &'a Redactor,
    seq_next: &'a mut u64,
    sink: Sink<'a>,
}

impl Pipeline {
    fn split(&mut self, wall: i64) -> Split<'_> {
        let Pipeline {
            tailer,
            normalizers,
            record_specs,
            assemblers,
            redactor,
            alerts,
            segments,
            seq_next,
            scratch,
            written,
            tap,
            ..
        } = self;
        Split {
            tailer,
            normalizers,
            record_specs,
            assemblers,
            redactor,
            seq_next,
            sink: Sink {
                segments,
                scratch,
                written,
                tap,
                alerts: alerts.batch(),
                wall,
                failed: None,
            },
        }
    }
}

/// Give memory freed by a reload back to the system. A reload builds a
/// new redactor (the check builds one more) and drops the old one: several
/// MiB of regex automata, allocated on whichever thread ran the build. glibc
/// keeps such freed chunks in its per-thread arenas, so without this every
/// reload left RSS higher until it settled: 24 -> 55 MiB over a dozen
/// idle reloads, 37 -> 64 MiB in the hour-long soak (a reload a minute).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and shrinks glibc's own arenas; it
    // takes no pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A write pass's outcome: its first write error stops the agent without
/// committing — crash-only, or for a full or read-only disk a rollback to
/// the last checkpoint (`disk.rs`). Nothing is committed, nothing lost.
fn write_result(failed: Option<std::io::Error>) -> anyhow::Result<()> {
    match failed {
        Some(e) => {
            Err(anyhow::Error::new(e)
                .context("writing a segment failed; stopping without committing"))
        }
        None => Ok(()),
    }
}

/// Where finished events go: the segment, the live tap and the alerts.
/// The first write error stops further writes (crash-only, see `read`).
/// A sink lives for one pass of the write path (one file's read, one
/// records tick): the alert events it gathered are handed to the engine
/// when it is dropped, before the pipeline waits for more input.
struct Sink<'a> {
    segments: &'a mut SegmentSet,
    scratch: &'a mut Vec<u8>,
    written: &'a mut PerTier<u64>,
    tap: &'a mut tap::Collector,
    alerts: AlertBatch,
    wall: i64,
    failed: Option<std::io::Error>,
}

impl Sink<'_> {
    fn write(&mut self, ev: &Event) {
        if self.failed.is_some() {
            return;
        }
        self.scratch.clear();
        ev.write_json(self.scratch);
        if let Err(e) = self.segments.append(ev, self.scratch, self.wall) {
            self.failed = Some(e);
            return;
        }
        self.written[ev.tier] += 1;
        self.tap.offer(ev, self.scratch);
        self.alerts.offer(ev);
        if let Some((build, tiers)) = segment::build_end(ev) {
            self.segments.seal_build(build, &tiers);
        }
    }
}

fn normalizers(cfg: &Config, instance_id: &str) -> Vec<Normalizer> {
    cfg.sources
        .iter()
        .map(|s| {
            if crate::config::stream::is_stream(s) {
                stream::normalizer(s, instance_id)
            } else {
                Normalizer::new(s, instance_id)
            }
        })
        .collect()
}

fn source_counters(cfg: &Config) -> Vec<Counter> {
    cfg.sources
        .iter()
        .map(|s| {
            metrics()
                .bytes_read
                .get_or_create(&SourceLabel {
                    source: s.name.get_ref().clone(),
                })
                .clone()
        })
        .collect()
}

/// One agent per data_dir: two would both append to the same segments.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let dir = data_dir.join("state");
    fs::create_dir_all(&dir)?;
    let path = dir.join("lock");
    // On a read-only mount an existing lock file is locked read-only.
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .or_else(|e| match crate::ops::disk::classify(&e) {
            Some(_) => File::open(&path),
            None => Err(e),
        })
        .with_context(|| format!("cannot create {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        anyhow::bail!(
            "another logship is already running with data_dir {} (lock {} is held)",
            data_dir.display(),
            path.display()
        );
    }
    Ok(f)
}
