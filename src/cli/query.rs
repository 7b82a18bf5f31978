//! `logship query`: a thin command line over [`crate::read`] — flags to a
//! [`Filter`], events to stdout as NDJSON or aligned text.
//!
//! The engine runs on a small runtime; this thread only writes, so a slow
//! pipe (`| less`) slows the query through the engine's bounded channel
//! instead of growing memory. A progress line goes to stderr when the
//! query takes over a second and stderr is a terminal.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::event::{Event, Level};
use crate::normalize::time::civil_from_days;
use crate::pipeline::now_ms;
use crate::read::follow::{Follower, POLL};
use crate::read::{self, Filter, FilterParams, Reader, Stats};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Ndjson,
    Text,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// system, build, deploy, action or lifecycle.
    #[arg(long)]
    pub tier: String,
    /// Start (inclusive): RFC 3339, a date, epoch milliseconds, or an age such as "2h".
    #[arg(long)]
    pub since: String,
    /// End (exclusive), same forms as --since; default: now.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// Minimum level: debug, info, warn, error.
    #[arg(long)]
    pub lvl: Option<String>,
    #[arg(long)]
    pub src: Option<String>,
    #[arg(long = "instance-id")]
    pub instance_id: Option<String>,
    #[arg(long = "project-id")]
    pub project_id: Option<String>,
    #[arg(long = "build-id")]
    pub build_id: Option<String>,
    #[arg(long = "user-id")]
    pub user_id: Option<String>,
    #[arg(long = "req-id")]
    pub req_id: Option<String>,
    /// Regex on `msg`.
    #[arg(long)]
    pub grep: Option<String>,
    /// Print at most N events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Keep printing new events as they are written.
    #[arg(long)]
    pub follow: bool,
    /// ndjson, or text (aligned; coloured on a terminal unless NO_COLOR is set).
    #[arg(long, value_enum, default_value = "ndjson")]
    pub output: Output,
    /// Bucket objects fetched at once.
    #[arg(long, default_value_t = read::DEFAULT_CONCURRENCY, hide = true)]
    pub concurrency: usize,
    /// Print the query's counters to stderr at the end (benchmarks).
    #[arg(long, hide = true)]
    pub stats: bool,
}

impl Args {
    fn params(&self) -> FilterParams {
        FilterParams {
            tier: Some(self.tier.clone()),
            since: Some(self.since.clone()),
            until: self.until.clone(),
            kind: self.kind.clone(),
            lvl: self.lvl.clone(),
            src: self.src.clone(),
            instance_id: self.instance_id.clone(),
            project_id: self.project_id.clone(),
            build_id: self.build_id.clone(),
            user_id: self.user_id.clone(),
            req_id: self.req_id.clone(),
            grep: self.grep.clone(),
            limit: self.limit.map(|l| l.to_string()),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = args.config.load_or_default()?;
    let now = now_ms();
    let filter = Filter::parse_query(&args.params(), now)?;
    let mut reader = Reader::from_config(&cfg)?;
    reader.concurrency = args.concurrency.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stats = Arc::new(Stats::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let task = {
        let (reader, filter, stats) = (reader.clone(), filter.clone(), stats.clone());
        runtime.spawn(async move { read::query(&reader, &filter, now, tx, stats).await })
    };
    let done = Arc::new(AtomicBool::new(false));
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| spawn_progress(stats.clone(), done.clone()));
    let stdout = std::io::stdout();
    let mut out = Printer::new(
        args.output,
        stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        BufWriter::new(stdout.lock()),
    );
    let mut printed = 0u64;
    let mut broken_pipe = false;
    while let Some(e) = rx.blocking_recv() {
        if out.print(&e).is_err() {
            broken_pipe = true;
            break;
        }
        printed += 1;
    }
    drop(rx);
    let result = runtime.block_on(task);
    done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.join();
    }
    let snapshot = result.context("the query task failed")??;
    if args.stats {
        eprintln!(
            "stats: listed={} pruned={} fetched={} requests={} bytes_read={} bytes_scanned={} bad_lines={} emitted={}",
            Stats::get(&stats.listed),
            Stats::get(&stats.pruned),
            Stats::get(&stats.fetched),
            Stats::get(&stats.requests),
            Stats::get(&stats.bytes_read),
            Stats::get(&stats.bytes_scanned),
            Stats::get(&stats.bad_lines),
            Stats::get(&stats.emitted)
        );
    }
    if broken_pipe || !args.follow || filter.limit.is_some_and(|l| printed >= l) {
        let _ = out.flush();
        return Ok(ExitCode::SUCCESS);
    }
    out.flush()?;
    let mut filter = filter;
    if args.until.is_none() {
        filter.until = i64::MAX;
    }
    let mut left = filter.limit.map(|l| l - printed);
    let mut follower = Follower::new(&cfg.agent.data_dir, filter, snapshot);
    loop {
        let mut failed = false;
        let go_on = follower.poll(now_ms(), &mut |e| {
            if out.print(&e).is_err() {
                failed = true;
                return false;
            }
            left = left.map(|n| n.saturating_sub(1));
            left != Some(0)
        })?;
        if failed || !go_on || out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL);
    }
}

fn spawn_progress(stats: Arc<Stats>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut shown = false;
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if start.elapsed() < Duration::from_secs(1) || done.load(Ordering::Relaxed) {
                continue;
            }
            shown = true;
            eprint!(
                "\r\x1b[2K{} of {} objects, {:.1} MiB read, {} events",
                Stats::get(&stats.fetched),
                Stats::get(&stats.listed),
                Stats::get(&stats.bytes_read) as f64 / (1 << 20) as f64,
                Stats::get(&stats.emitted)
            );
        }
        if shown {
            eprint!("\r\x1b[2K");
        }
    })
}

/// Writes events as NDJSON or text.
struct Printer<W: Write> {
    output: Output,
    color: bool,
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Printer<W> {
    fn new(output: Output, color: bool, out: W) -> Self {
        Printer {
            output,
            color,
            out,
            buf: Vec::new(),
        }
    }

    fn print(&mut self, e: &Event) -> std::io::Result<()> {
        self.buf.clear();
        match self.output {
            Output::Ndjson => e.write_json(&mut self.buf),
            Output::Text => text_line(e, self.color, &mut self.buf),
        }
        self.out.write_all(&self.buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// `2026-01-02T03:04:05.678Z ERROR instance  src  msg`, the level coloured.
fn text_line(e: &Event, color: bool, out: &mut Vec<u8>) {
    let (lvl, code) = match e.lvl {
        Level::Debug => ("DEBUG", "2"),
        Level::Info => ("INFO", "32"),
        Level::Warn => ("WARN", "33"),
        Level::Error => ("ERROR", "31;1"),
    };
    let ts = fmt_ts(e.ts);
    let lvl = if color {
        format!("\x1b[{code}m{lvl:<5}\x1b[0m")
    } else {
        format!("{lvl:<5}")
    };
    let ids: Vec<&str> = [&e.build_id, &e.project_id, &e.req_id]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect();
    let ids = if ids.is_empty() {
        String::new()
    } else {
        format!(" [{}]", ids.join(" "))
    };
    // Newlines inside a message (stack traces) are indented under it.
    let msg = e.msg.replace('\n', "\n    ");
    let _ = writeln!(
        out,
        "{ts} {lvl} {:<16} {:<10}{ids} {msg}",
        e.instance_id, e.src
    );
}

/// RFC 3339 UTC with milliseconds.
pub fn fmt_ts(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tier;

    #[test]
    fn text_lines_are_aligned_and_plain_without_colour() {
        assert_eq!(fmt_ts(1_795_319_384_123), "2026-11-22T03:49:44.123Z");
        let mut e = Event::empty(Tier::Build);
        (e.ts, e.instance_id, e.src, e.msg, e.lvl) =
            (0, "h1".into(), "app".into(), "a\nb".into(), Level::Warn);
        e.build_id = Some("b7".into());
        let mut out = Vec::new();
        text_line(&e, false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:00.000Z WARN  h1               app        [b7] a\n    b\n"
        );
        let mut out = Vec::new();
        text_line(&e, true, &mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\x1b[33mWARN \x1b[0m"));
    }
}
