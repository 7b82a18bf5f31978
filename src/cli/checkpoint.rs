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
//!   came from, so it is inferred (`--files resume`, the default): the
//!   file's lines are put through the agent's line path (the same
//!   normalizing and redaction), and the longest prefix of them whose
//!   messages appear, in order, among the events stored for that source
//!   (in `seq` order, i.e. read order) is taken as read. The redaction
//!   state (an open PEM block) is rebuilt from those lines too.
//!   `--files end` takes every file as read to its end (loses the lines
//!   not yet stored); `--files beginning` reads every file again (ships
//!   every stored line twice).
//!
//! Where `resume` errs, and to which side: a line whose message also
//! appears later among another file's events of the same source may be
//! taken as read (lost); a prefix whose events are gone from the bucket
//! (expired by its lifecycle rule), a line cut at 256 KiB, or a line that
//! normalizes differently now (the config changed) ends the match early,
//! so the rest of the file is read again (duplicated where still stored).
//! The report says, per file, how much is taken as read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::event::{Event, Tier};
use crate::normalize::time::days_from_civil;
use crate::normalize::Normalizer;
use crate::pipeline::checkpoint::{self, Checkpoint, CheckpointError};
use crate::pipeline::line::{LinePath, Stream};
use crate::pipeline::{lock_data_dir, now_ms, SEQ_LEASE};
use crate::redact::{Redactor, StreamState};
use crate::segment::layout;
use crate::segment::{SegmentId, SegmentState, Status};
use crate::source::file::{fingerprint, FileState, Head, FP_LEN};
use crate::source::lines::MAX_LINE;
use crate::source::tailer::{Line, TailPolicy, Tailer};

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
    for (f, lines, size) in &files {
        println!(
            "file {}: resumes at byte {} of {size} ({lines} lines taken as read)",
            f.path.display(),
            f.offset
        );
    }
    let cp = Checkpoint {
        instance_id,
        seq_lease_end,
        files: files.into_iter().map(|(f, _, _)| f).collect(),
        retired: Vec::new(),
        segments,
        // Not rebuilt: stored events do not say where a stream's cursor
        // stood (see the note printed below).
        streams: Vec::new(),
    };
    if cfg.sources.iter().any(crate::config::stream::is_stream) {
        println!(
            "event-stream sources: cursors are not rebuilt; they resume from the start \
             of what their server sends (for vercel, `lookback`), so events already \
             stored can be written again"
        );
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

/// The state of every file the sources match now, with how many lines
/// are taken as read and its size.
fn file_states(
    cfg: &Config,
    stored: &[Event],
    from: FilesFrom,
) -> anyhow::Result<Vec<(FileState, u64, u64)>> {
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
        let (offset, lines, redact) = match from {
            FilesFrom::Beginning => (0, 0, StreamState::default()),
            FilesFrom::End => (size, 0, StreamState::default()),
            FilesFrom::Resume => {
                let src = &cfg.sources[si];
                let normalizer = Normalizer::new(src, &instance_id);
                let path = LinePath {
                    normalizer: &normalizer,
                    redactor: &redactor,
                };
                let name = src.name.get_ref();
                let candidates: Vec<&str> = stored
                    .iter()
                    .filter(|e| e.tier == src.tier)
                    .filter(|e| e.src == *name || e.src == "stdout" || e.src == "stderr")
                    .map(|e| e.msg.as_str())
                    .collect();
                read_prefix(&file, path, &candidates)?
            }
        };
        f.offset = offset;
        f.redact = redact;
        out.push((f, lines, size));
    }
    Ok(out)
}

/// The longest prefix of `file`'s whole lines whose events' messages are
/// a subsequence of `stored` (greedy, earliest match): its end offset, its
/// line count, and the redaction state after it.
fn read_prefix(
    file: &File,
    path: LinePath<'_>,
    stored: &[&str],
) -> anyhow::Result<(u64, u64, StreamState)> {
    let mut r = BufReader::with_capacity(1 << 20, file);
    let (mut offset, mut lines, mut j) = (0u64, 0u64, 0usize);
    let mut state = StreamState::default();
    let mut buf = Vec::new();
    let mut ev = Event::empty(Tier::System);
    let mut seq = 0;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break; // the end, or a last line without its newline yet
        }
        let mut line = &buf[..n - 1];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.len() > MAX_LINE {
            break;
        }
        let mut next = state.clone();
        let stream = Stream {
            path_ids: &[],
            redact: &mut next,
        };
        let l = Line {
            bytes: line,
            truncated: false,
            at: offset,
        };
        path.event(l, stream, now_ms(), &mut seq, &mut ev);
        match stored[j..].iter().position(|m| *m == ev.msg) {
            Some(k) => j += k + 1,
            None => break,
        }
        state = next;
        offset += n as u64;
        lines += 1;
    }
    Ok((offset, lines, state))
}
