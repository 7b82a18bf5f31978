//! `logship normalize`: raw lines on stdin to unified events on stdout,
//! normalized and redacted exactly as the agent would write them.
//!
//! "Exactly" holds by construction: stdin is split into lines by the
//! tailer's splitter (`source::lines`) and each line goes through the
//! agent's own line path ([`crate::pipeline::line`]), through the agent's
//! record steps ([`crate::pipeline::records`]: container partial lines
//! joined, `--multiline` grouping) when the format or `--multiline` needs
//! them. Only `seq` (from 0 here) and `ts` of lines without a timestamp
//! (the time they were read) differ from what the agent writes. A record
//! is complete at the next record's first line or at the end of the input
//! (a pipe is not waited on for `timeout`).

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use std::time::Instant;

use crate::config::{Format, MultilineConfig, MultilineMode};
use crate::event::{Event, Tier};
use crate::normalize::Normalizer;
use crate::pipeline::line::{LinePath, Stream};
use crate::pipeline::multiline::Rules;
use crate::pipeline::now_ms;
use crate::pipeline::records::{Assembler, Ctx, RecordSpec};
use crate::redact::{Redactor, StreamState};
use crate::source::lines;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Tier of the events: system, build, deploy, action, lifecycle.
    #[arg(long)]
    pub tier: String,
    /// Line format: auto, json, logfmt, text, cri, docker, syslog,
    /// combined, klog.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Join multi-line records: auto, java, python, go, node, ruby, php,
    /// dotnet, custom.
    #[arg(long)]
    pub multiline: Option<String>,
    /// `--multiline custom`: a line matching this regex begins a record.
    #[arg(long)]
    pub start: Option<String>,
    /// `--multiline custom`: a line matching this regex joins the previous one.
    #[arg(long = "continue")]
    pub continue_: Option<String>,
    /// `src` of the events.
    #[arg(long, default_value = "stdin")]
    pub src: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let tier = Tier::parse(&args.tier).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown tier {:?}; use system, build, deploy, action or lifecycle",
            args.tier
        )
    })?;
    let format = Format::parse(&args.format).ok_or_else(|| {
        let all: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        anyhow::anyhow!(
            "unknown format {:?}; use one of {}",
            args.format,
            all.join(", ")
        )
    })?;
    let spec = record_spec(args, format)?;
    let cfg = args.config.load_or_default()?;
    let redactor = Redactor::new(&cfg.redaction).map_err(anyhow::Error::msg)?;
    let normalizer = Normalizer::plain(&args.src, tier, format, &cfg.agent.instance_id());
    let path = LinePath {
        normalizer: &normalizer,
        redactor: &redactor,
    };
    let mut state = StreamState::default();
    let mut ev = Event::empty(tier);
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut line_out = Vec::new();
    let mut seq = 0u64;
    let mut assembler = Assembler::default();
    let mut write = |ev: &Event, out: &mut BufWriter<_>| {
        line_out.clear();
        ev.write_json(&mut line_out);
        out.write_all(&line_out)
    };
    let mut failed = None;
    lines::read_all(&mut std::io::stdin().lock(), &mut |line| {
        if !spec.needed() {
            let stream = Stream {
                path_ids: &[],
                redact: &mut state,
            };
            path.event(line, stream, now_ms(), &mut seq, &mut ev);
            return write(&ev, &mut out);
        }
        let mut cx = Ctx {
            path,
            spec: &spec,
            path_ids: &[],
            redact: &mut state,
            now: Instant::now(),
            wall_ms: now_ms(),
            next_seq: &mut seq,
        };
        assembler.push(line, line.at, &mut cx, &mut |ev| {
            if let Err(e) = write(ev, &mut out) {
                failed.get_or_insert(e);
            }
        });
        failed.take().map_or(Ok(()), Err)
    })?;
    let mut cx = Ctx {
        path,
        spec: &spec,
        path_ids: &[],
        redact: &mut state,
        now: Instant::now(),
        wall_ms: now_ms(),
        next_seq: &mut seq,
    };
    assembler.flush(&mut cx, &mut |ev| {
        if let Err(e) = write(ev, &mut out) {
            failed.get_or_insert(e);
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The record steps the flags ask for, built like a source's.
fn record_spec(args: &Args, format: Format) -> anyhow::Result<RecordSpec> {
    let container = matches!(format, Format::Auto | Format::Cri | Format::Docker);
    let Some(mode) = &args.multiline else {
        if args.start.is_some() || args.continue_.is_some() {
            anyhow::bail!("--start and --continue need --multiline custom");
        }
        return Ok(RecordSpec::lines(container));
    };
    let mode = MultilineMode::parse(mode).ok_or_else(|| {
        let all: Vec<&str> = MultilineMode::ALL.iter().map(|m| m.as_str()).collect();
        anyhow::anyhow!(
            "unknown multiline mode {mode:?}; use one of {}",
            all.join(", ")
        )
    })?;
    let mut ml = MultilineConfig::with_mode(mode);
    ml.start = args.start.clone().map(|s| toml::Spanned::new(0..0, s));
    ml.continue_ = args.continue_.clone().map(|s| toml::Spanned::new(0..0, s));
    let rules = Rules::new(&ml).map_err(|e| anyhow::anyhow!("--multiline: {e}"))?;
    Ok(RecordSpec::grouped(rules, &ml, container))
}
