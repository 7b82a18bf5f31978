//! `logship normalize`: raw lines on stdin to unified events on stdout,
//! normalized and redacted exactly as the agent would write them.
//!
//! "Exactly" holds by construction: stdin is split into lines by the
//! tailer's splitter (`source::lines`) and each line goes through the
//! agent's own line path ([`crate::pipeline::line`]). Only `seq` (from 0
//! here) and `ts` of lines without a timestamp (the time they were read)
//! differ from what the agent writes.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use crate::config::Format;
use crate::event::{Event, Tier};
use crate::normalize::Normalizer;
use crate::pipeline::line::{LinePath, Stream};
use crate::pipeline::now_ms;
use crate::redact::{Redactor, StreamState};
use crate::source::lines;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Tier of the events: system, build, deploy, action, lifecycle.
    #[arg(long)]
    pub tier: String,
    /// Line format: auto, json, logfmt, text.
    #[arg(long, default_value = "auto")]
    pub format: String,
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
    let format = match args.format.as_str() {
        "auto" => Format::Auto,
        "json" => Format::Json,
        "logfmt" => Format::Logfmt,
        "text" => Format::Text,
        other => anyhow::bail!("unknown format {other:?}; use auto, json, logfmt or text"),
    };
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
    lines::read_all(&mut std::io::stdin().lock(), &mut |line| {
        let stream = Stream {
            path_ids: &[],
            redact: &mut state,
        };
        path.event(line, stream, now_ms(), &mut seq, &mut ev);
        line_out.clear();
        ev.write_json(&mut line_out);
        out.write_all(&line_out)
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
