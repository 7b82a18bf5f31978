//! `logship checkpoint repair`: rebuild a checkpoint that is lost, when the
//! current file and the previous one (`checkpoint.prev.json`, which the
//! agent falls back to by itself) are both unusable.
//!
//! What a checkpoint holds and where each part comes back from:
//! - **segments**: every local segment file, cut after its last whole line,
//!   is taken as *sealed* — it is uploaded again (same key, same bytes for
//!   a segment that was already uploaded whole: the upload is idempotent)
//!   and new lines go to new segments;
//! - **the `seq` lease**: past the highest `seq` this instance stored
//!   (local segments and bucket) and past any lease end still legible in
//!   the broken files, plus 64 leases, so a value handed out but never
//!   stored (seen by an alert receiver or a live-tail client) is not reused
//!   unless the agent restarted more than 64 times without storing a line;
//! - **each file's offset**: events do not record the file or offset they
//!   came from, so it is inferred (`--files resume`, the default): the file
//!   goes through what the agent runs on it — the tailer's line splitter,
//!   the source's record steps (container partial lines joined, `multiline`
//!   grouping: the same [`Assembler`] as the agent and `logship normalize`)
//!   and the line path (normalizing, redaction) — and the longest prefix of
//!   its *records* that appear, in order, among the events stored for that
//!   source (in `seq` order, i.e. release order) is taken as read; a record
//!   and an event are the same when their `msg`s are, and their `ts` too
//!   where the line gave its own time (its text or a container runtime's
//!   timestamp). It resumes at the first line of the first record not
//!   stored, with the redaction state (an open PEM block) the agent had
//!   before that line — the pair the agent itself checkpoints for a record
//!   still open. `--files end` takes every file as read to its end (loses
//!   the lines not yet stored); `--files beginning` reads every file again
//!   (ships every stored line twice);
//! - **event-stream cursors** (`streams`): not rebuilt. A stored event does
//!   not keep its stream's cursor and id verbatim (an `http_ndjson` cursor
//!   or id field may become `ts`, `msg` or an id when normalized, or be
//!   changed by redaction; a Vercel deployment's `done` is not in any
//!   event), and a cursor rebuilt too far skips events for good. Each stream
//!   starts as on its very first run: an `http_ndjson` server sends from
//!   wherever it starts without a cursor (what it sends again is duplicated,
//!   what it no longer sends and was not stored is lost); a Vercel
//!   deployment within `lookback` is followed from its first event (its
//!   stored events are duplicated, none lost). The report says so per stream
//!   source.
//!
//! Where `resume` errs, and to which side: a record whose message (and time,
//! where it has one) also appears later among another file's events of the
//! same source may be taken as read (lost). A prefix whose events are gone
//! from the bucket (expired by its lifecycle rule) or are dated (`ts`, from
//! the line) more than a day before the oldest tailed file was created, a
//! record that normalizes or groups differently now (the config changed; a
//! syslog line without a year read around New Year), or a record the agent
//! closed early by its `timeout` (a writer that paused inside a stack trace)
//! and which now groups with the lines that came after, ends the match
//! early, so the rest of the file is read again (duplicated where still
//! stored). The report says, per file, how much is taken as read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::config::stream::StreamKind;
use crate::config::Config;
use crate::event::{Event, Tier};
use crate::normalize::time::days_from_civil;
use crate::normalize::Normalizer;
use crate::pipeline::checkpoint::{self, Checkpoint, CheckpointError};
use crate::pipeline::line::LinePath;
use crate::pipeline::records::{Assembler, Ctx, RecordSpec, Start};
use crate::pipeline::{lock_data_dir, now_ms, SEQ_LEASE};
use crate::redact::{Redactor, StreamState};
use crate::segment::layout;
use crate::segment::{SegmentId, SegmentState, Status};
use crate::source::file::{fingerprint, FileState, Head, FP_LEN};
use crate::source::lines;
use crate::source::tailer::{TailPolicy, Tailer};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Rebuild an unusable checkpoint from the local segments and the bucket.
    Repair(RepairArgs),
}

#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Where each tailed file resumes: "resume" (after the lines already
    /// stored), "end" (skip what is not stored yet) or "beginning" (read
    /// everything again).
    #[arg(long, value_enum, default_value = "resume")]
    pub files: FilesFrom,
    /// Print what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilesFrom {
    Resume,
    End,
    Beginning,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.action {
        Action::Repair(a) => repair(a),
    }
}

fn repair(args: &RepairArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::load(&args.config.path())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .config;
    let data_dir = cfg.agent.data_dir.clone();
    let _lock =
        lock_data_dir(&data_dir).context("stop the agent before repairing its checkpoint")?;
    match checkpoint::load(&data_dir) {
        Ok(Some(_)) => {
            println!(
                "{} is usable (or its previous one is, and the agent resumes from that by itself); nothing to repair",
                checkpoint::path(&data_dir).display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Ok(None) => println!(
            "no checkpoint in {}: rebuilding one from what is stored",
            data_dir.display()
        ),
        Err(CheckpointError::Corrupt { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let instance_id = cfg.agent.instance_id();
    let segments = local_segments(&cfg, args.dry_run)?;
    let stored = stored_events(&cfg, &instance_id)?;
    let mut max_seq = stored.iter().map(|e| e.seq).max();
    for f in [
        checkpoint::path(&data_dir),
        checkpoint::prev_path(&data_dir),
    ] {
        if let Some(end) = legible_lease_end(&f) {
            max_seq = Some(max_seq.map_or(end, |m| m.max(end)));
        }
    }
    let seq_lease_end = max_seq.map_or(0, |m| m + 1) + 64 * SEQ_LEASE;
    let files = file_states(&cfg, &stored, args.files)?;
    println!(
        "segments: {} local, all taken as sealed (uploaded again; idempotent)",
        segments.len()
    );
    println!(
        "seq: highest stored or recorded {}, lease continues at {seq_lease_end}",
        max_seq.map_or("none".to_string(), |m| m.to_string())
    );
    for f in &files {
        // Only `resume` groups lines into records.
        let records = match args.files {
            FilesFrom::Resume => format!(" ({} records)", f.records),
            FilesFrom::End | FilesFrom::Beginning => String::new(),
        };
        println!(
            "file {}: resumes at byte {} of {}: {} lines taken as read{records}",
            f.state.path.display(),
            f.state.offset,
            f.size,
            f.lines,
        );
        if f.again > 0 {
            println!(
                "  {} stored records after that point are read again (duplicated): \
                 released together with a record not stored, whose lines they overlap",
                f.again
            );
        }
    }
    let cp = Checkpoint {
        instance_id,
        seq_lease_end,
        files: files.into_iter().map(|f| f.state).collect(),
        retired: Vec::new(),
        segments,
        // Not rebuilt: stored events do not say where a stream's cursor
        // stood (see the note printed below).
        streams: Vec::new(),
    };
    for spec in crate::config::stream::specs(&cfg.sources) {
        println!("stream {}: {}", spec.name, stream_cost(&spec.kind));
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(ExitCode::SUCCESS);
    }
    let p = checkpoint::path(&data_dir);
    if p.exists() {
        let aside = p.with_extension("json.corrupt");
        fs::rename(&p, &aside).with_context(|| format!("moving {} aside", p.display()))?;
        println!("moved the unusable {} to {}", p.display(), aside.display());
    }
    checkpoint::store(&data_dir, &cp, &mut Vec::new())
        .with_context(|| format!("writing {}", p.display()))?;
    println!("wrote {}", p.display());
    Ok(ExitCode::SUCCESS)
}

/// What a stream source's missing cursor costs (not rebuilt: see the
/// module doc).
fn stream_cost(kind: &StreamKind) -> String {
    match kind {
        StreamKind::HttpNdjson { cursor_param, .. } => format!(
            "cursor not rebuilt; the first connection is made without `{cursor_param}`, so \
             the server sends from wherever it starts without one: events it sends that are \
             already stored are written twice, and events from before that point not yet \
             stored are lost"
        ),
        StreamKind::Vercel { .. } => "cursors not rebuilt; every deployment created within \
             `lookback` is followed again from its first event: its stored events are written \
             twice, none are lost"
            .to_string(),
    }
}

/// `"seq_lease_end":N` where it is still legible in a broken file (the
/// field comes early in the format, so a file cut short usually keeps it).
fn legible_lease_end(path: &Path) -> Option<u64> {
    let text = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let at = text.find("\"seq_lease_end\":")? + "\"seq_lease_end\":".len();
    let digits: String = text[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Every local segment file as a sealed segment, cut after its last whole
/// line (a partial line was never committed).
fn local_segments(cfg: &Config, dry_run: bool) -> anyhow::Result<Vec<SegmentState>> {
    let data_dir = &cfg.agent.data_dir;
    let mut out = Vec::new();
    for root in layout::LOCAL_ROOTS {
        for path in ndjson_under(&data_dir.join(root)) {
            let rel = path.strip_prefix(data_dir).unwrap_or(&path).to_path_buf();
            let Some((tier, group, day, instance, ulid)) = parse_local_path(&rel) else {
                println!("skipping {}: not a segment name", path.display());
                continue;
            };
            let raw = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let whole = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if whole < raw.len() && !dry_run {
                let f = fs::OpenOptions::new().write(true).open(&path)?;
                f.set_len(whole as u64)?;
                f.sync_all()?;
            }
            let (mut lines, mut first_ts, mut last_ts) = (0u64, i64::MAX, i64::MIN);
            for l in raw[..whole]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                if let Some(e) = std::str::from_utf8(l)
                    .ok()
                    .and_then(|s| Event::from_json(s).ok())
                {
                    first_ts = first_ts.min(e.ts);
                    last_ts = last_ts.max(e.ts);
                }
                lines += 1;
            }
            if lines == 0 {
                continue;
            }
            let created = ulid::Ulid::from_string(&ulid)
                .map(|u| u.timestamp_ms() as i64)
                .unwrap_or_else(|_| day * 86_400_000);
            let id = SegmentId(out.len() as u64 + 1);
            let group_opt = layout::group_id(tier).map(|_| group.clone());
            out.push(SegmentState {
                id,
                tier,
                group: group_opt,
                day,
                key: layout::object_key(
                    cfg.bucket.key_prefix(),
                    tier,
                    &group,
                    day,
                    &instance,
                    &ulid,
                ),
                path: rel,
                len: whole as u64,
                lines,
                first_ts,
                last_ts,
                created_ms: created,
                last_write_ms: created,
                status: Status::Sealed,
                generation: 1,
                uploaded_ms: None,
            });
        }
    }
    Ok(out)
}

/// `(tier, group, day, instance, ulid)` of a local segment path (relative
/// to data_dir), as `layout::local_path` makes it.
fn parse_local_path(rel: &Path) -> Option<(Tier, String, i64, String, String)> {
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let day = |s: &str| -> Option<i64> {
        let mut it = s.splitn(3, '-');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        Some(days_from_civil(y, m, d))
    };
    let stem = |s: &str| s.strip_suffix(".ndjson").map(str::to_string);
    let split_ulid = |s: &str| -> Option<(String, String)> {
        let s = s.strip_suffix(".ndjson")?;
        let cut = s.len().checked_sub(27)?;
        (s.as_bytes().get(cut) == Some(&b'-'))
            .then(|| (s[..cut].to_string(), s[cut + 1..].to_string()))
    };
    match parts.as_slice() {
        ["system", date, file] => {
            let (inst, ulid) = split_ulid(file)?;
            Some((Tier::System, String::new(), day(date)?, inst, ulid))
        }
        [root @ ("builds" | "deploys"), date, file] => {
            let tier = if *root == "builds" {
                Tier::Build
            } else {
                Tier::Deploy
            };
            Some((tier, stem(file)?, day(date)?, String::new(), String::new()))
        }
        [root @ ("projects" | "lifecycle"), date, group, file] => {
            let tier = if *root == "projects" {
                Tier::Action
            } else {
                Tier::Lifecycle
            };
            let (inst, ulid) = split_ulid(file)?;
            Some((tier, group.to_string(), day(date)?, inst, ulid))
        }
        _ => None,
    }
}

fn ndjson_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(ndjson_under(&p));
        } else if p.extension().is_some_and(|x| x == "ndjson") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// This instance's stored events (local segments and the bucket) of the
/// sources' tiers, since a day before the oldest file now tailed was
/// created, in `seq` order.
fn stored_events(cfg: &Config, instance_id: &str) -> anyhow::Result<Vec<Event>> {
    let tailer = Tailer::new(
        &cfg.sources,
        Vec::new(),
        Vec::new(),
        false,
        TailPolicy::default(),
    )?;
    let mut t = tailer;
    t.scan();
    let oldest = t
        .states()
        .0
        .iter()
        .filter_map(|f| fs::metadata(&f.path).ok())
        .filter_map(|m| m.created().or_else(|_| m.modified()).ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .min()
        .unwrap_or_else(now_ms);
    let since = oldest - 86_400_000;
    let mut tiers: Vec<Tier> = cfg.sources.iter().map(|s| s.tier).collect();
    tiers.sort_by_key(|t| t.as_str());
    tiers.dedup();
    let reader = crate::read::Reader::from_config(cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut all = Vec::new();
    for tier in tiers {
        let params = crate::read::FilterParams {
            tier: Some(tier.as_str().to_string()),
            since: Some(since.to_string()),
            instance_id: Some(instance_id.to_string()),
            ..Default::default()
        };
        let now = now_ms();
        let filter = crate::read::Filter::parse(&params, now)?;
        let events = rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
            let stats = std::sync::Arc::new(crate::read::Stats::default());
            let q = {
                let reader = reader.clone();
                tokio::spawn(
                    async move { crate::read::query(&reader, &filter, now, tx, stats).await },
                )
            };
            let mut out = Vec::new();
            while let Some(e) = rx.recv().await {
                out.push(e);
            }
            q.await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .map_err(anyhow::Error::from)?;
            anyhow::Ok(out)
        })?;
        all.extend(events);
    }
    all.sort_by_key(|e| e.seq);
    all.dedup_by_key(|e| e.seq);
    Ok(all)
}

/// One file's state as rebuilt, with what the report says about it.
struct Rebuilt {
    state: FileState,
    /// Whole lines before the resume offset.
    lines: u64,
    /// Records (events) those lines made (`resume` only).
    records: u64,
    /// Stored records after the resume point (read again).
    again: u64,
    size: u64,
}

/// The state of every file the sources match now.
fn file_states(cfg: &Config, stored: &[Event], from: FilesFrom) -> anyhow::Result<Vec<Rebuilt>> {
    let mut t = Tailer::new(
        &cfg.sources,
        Vec::new(),
        Vec::new(),
        false,
        TailPolicy::default(),
    )?;
    t.scan();
    let redactor = Redactor::new(&cfg.redaction).map_err(anyhow::Error::msg)?;
    let instance_id = cfg.agent.instance_id();
    let by_name: HashMap<&str, usize> = cfg
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.get_ref().as_str(), i))
        .collect();
    let mut out = Vec::new();
    for mut f in t.states().0 {
        let Some(&si) = by_name.get(f.source.as_str()) else {
            continue;
        };
        let file = File::open(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
        let size = file.metadata()?.len();
        let head_len = size.min(FP_LEN);
        f.head = fingerprint(&file, head_len)?
            .filter(|_| head_len > 0)
            .map(|hash| Head {
                len: head_len,
                hash,
            });
        let covered = match from {
            FilesFrom::Beginning => Covered::default(),
            FilesFrom::End => Covered {
                offset: size,
                ..Covered::default()
            },
            FilesFrom::Resume => {
                let src = &cfg.sources[si];
                let normalizer = Normalizer::new(src, &instance_id);
                let path = LinePath {
                    normalizer: &normalizer,
                    redactor: &redactor,
                };
                let name = src.name.get_ref();
                let candidates: Vec<(&str, i64)> = stored
                    .iter()
                    .filter(|e| e.tier == src.tier)
                    .filter(|e| e.src == *name || e.src == "stdout" || e.src == "stderr")
                    .map(|e| (e.msg.as_str(), e.ts))
                    .collect();
                covered_prefix(&file, size, path, &RecordSpec::new(src), &candidates)?
            }
        };
        let lines = lines_before(&file, covered.offset, size)?;
        f.offset = covered.offset;
        f.redact = covered.redact;
        f.skipping = covered.skipping;
        out.push(Rebuilt {
            state: f,
            lines,
            records: covered.records,
            again: covered.again,
            size,
        });
    }
    Ok(out)
}

/// How much of a file its stored events cover.
#[derive(Debug, Default)]
struct Covered {
    /// Where reading resumes: the first line of the first record not
    /// stored, or the end.
    offset: u64,
    /// Records (events) before `offset`.
    records: u64,
    /// Stored records at or after `offset` (read again: duplicated).
    again: u64,
    /// The redaction state at `offset`.
    redact: StreamState,
    /// `offset` is inside an over-long last line whose head was stored.
    skipping: bool,
}

/// Walks a file's events, in the order the agent releases them, against
/// the stored events of its source: a greedy subsequence match (each
/// event takes the earliest stored event equal to it after the previous
/// match), stopping at the first event not found.
///
/// Equal means the same `msg`, and the same `ts` where the line supplied
/// its time (a timestamp of its own, or a container runtime's): many
/// container lines carry none in their text ("GET /health 200"), and
/// without `ts` such a line not stored could be taken for another file's
/// stored one and lost. A line without a time of its own gets the read
/// time — `wall_ms` here, the agent's clock there — so only `msg` counts.
struct Matcher<'s> {
    stored: &'s [(&'s str, i64)],
    /// The read time given to lines without a time of their own.
    wall_ms: i64,
    next: usize,
    /// Events matched before the resume point.
    records: u64,
    /// The resume point of the events matched last, and how many share it.
    group: Option<(u64, u64)>,
    /// Stored events at or after the resume point: read again.
    again: u64,
    /// The resume point of the first event not stored, with the redaction
    /// state there.
    unstored: Option<(u64, StreamState)>,
}

impl Matcher<'_> {
    fn take(&mut self, ev: &Event, start: Start<'_>) {
        if self.unstored.is_some() {
            return;
        }
        let own_ts = ev.ts != self.wall_ms;
        let found = self.stored[self.next..]
            .iter()
            .position(|(m, ts)| *m == ev.msg && (!own_ts || *ts == ev.ts));
        match found {
            Some(k) => {
                self.next += k + 1;
                self.records += 1;
                match &mut self.group {
                    Some((at, n)) if *at == start.at => *n += 1,
                    g => *g = Some((start.at, 1)),
                }
            }
            None => {
                // Released with stored events it overlaps (the agent stopped
                // between writing them): those are read again with it.
                if let Some((at, n)) = self.group {
                    if at == start.at {
                        self.records -= n;
                        self.again = n;
                    }
                }
                self.unstored = Some((start.at, start.redact.clone()));
            }
        }
    }
}

/// Returned by the line callback to stop reading once the match has ended.
#[derive(Debug)]
struct MatchEnded;

impl std::fmt::Display for MatchEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("match ended")
    }
}

impl std::error::Error for MatchEnded {}

/// The longest prefix of `file` (its first `size` bytes) whose records are
/// stored, in order, among `stored`.
///
/// The file goes through exactly what the agent runs on it: the tailer's
/// line splitter (`lines::read_all`: cut and flagged at 256 KiB, a last
/// line without its newline handed out as the tailer does after its idle
/// wait) and the source's record steps ([`Assembler`]: container partial
/// lines joined, `multiline` grouping), with the agent's line path inside.
/// A source that needs no record steps takes the assembler's pass-through,
/// which is [`LinePath::event`]. Each released event carries where its
/// record began, so the match stops exactly at the first record not
/// stored, with the redaction state the agent had there — the same pair
/// the agent checkpoints for a record still open. At the end of the file
/// what is still open is completed, as the agent does after `timeout`:
/// stored, it was released then; not stored, reading resumes at its start.
fn covered_prefix(
    file: &File,
    size: u64,
    path: LinePath<'_>,
    spec: &RecordSpec,
    stored: &[(&str, i64)],
) -> anyhow::Result<Covered> {
    // No time passes here: nothing times out early, records are grouped by
    // their lines alone (see the module doc for the agent's timeouts).
    let (now, wall_ms) = (Instant::now(), now_ms());
    let mut m = Matcher {
        stored,
        wall_ms,
        next: 0,
        records: 0,
        group: None,
        again: 0,
        unstored: None,
    };
    let mut assembler = Assembler::default();
    let mut redact = StreamState::default();
    let mut seq = 0u64;
    let mut last_truncated = false;
    let mut input = rewound(file)?.take(size);
    let read = lines::read_all(&mut input, &mut |line| {
        if m.unstored.is_some() {
            return Err(io::Error::other(MatchEnded));
        }
        last_truncated = line.truncated;
        let mut cx = Ctx {
            path,
            spec,
            path_ids: &[],
            redact: &mut redact,
            now,
            wall_ms,
            next_seq: &mut seq,
        };
        assembler.push_with_start(line, line.at, &mut cx, &mut |ev, start| m.take(ev, start));
        Ok(())
    });
    match read {
        Ok(()) => {}
        Err(e) if e.get_ref().is_some_and(|i| i.is::<MatchEnded>()) => {}
        Err(e) => return Err(e).context("reading a tailed file"),
    }
    if m.unstored.is_none() {
        let mut cx = Ctx {
            path,
            spec,
            path_ids: &[],
            redact: &mut redact,
            now,
            wall_ms,
            next_seq: &mut seq,
        };
        assembler.flush_with_start(&mut cx, &mut |ev, start| m.take(ev, start));
    }
    Ok(match m.unstored {
        Some((offset, redact)) => Covered {
            offset,
            records: m.records,
            again: m.again,
            redact,
            skipping: false,
        },
        None => Covered {
            offset: size,
            records: m.records,
            again: 0,
            redact,
            // The splitter's state at the end: inside an over-long line
            // whose head it handed out (the agent skips the rest of it).
            skipping: last_truncated && size > 0 && last_byte(file, size)? != b'\n',
        },
    })
}

/// `file` read from its start (reads through a `&File` share its position).
fn rewound(file: &File) -> io::Result<&File> {
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    Ok(f)
}

fn last_byte(file: &File, size: u64) -> io::Result<u8> {
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, size - 1)?;
    Ok(b[0])
}

/// Lines in `file` before `offset` (a line start, or `size`): its
/// newlines, and a last line without one when `offset` is the end.
fn lines_before(file: &File, offset: u64, size: u64) -> io::Result<u64> {
    let mut r = BufReader::with_capacity(1 << 20, rewound(file)?.take(offset));
    let mut n = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        n += memchr::memchr_iter(b'\n', buf).count() as u64;
        let len = buf.len();
        r.consume(len);
    }
    if offset == size && size > 0 && last_byte(file, size)? != b'\n' {
        n += 1;
    }
    Ok(n)
}
