//! `logship normalize`: raw lines on stdin to unified events on stdout,
//! normalized and redacted exactly as the agent would write them.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use crate::config::Format;
use crate::event::{truncate_msg, Event, Tier};
use crate::normalize::Normalizer;
use crate::pipeline::now_ms;
use crate::redact::{Redactor, StreamState};

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
    let mut state = StreamState::default();
    let mut ev = Event::empty(tier);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let (mut raw, mut line_out) = (Vec::new(), Vec::new());
    let mut seq = 0u64;
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        while matches!(raw.last(), Some(b'\n' | b'\r')) {
            raw.pop();
        }
        let text = String::from_utf8_lossy(&raw);
        let supplied = normalizer.normalize(&text, now_ms(), &[], &mut ev);
        redactor.redact_msg(&mut state, &mut ev.msg);
        if let Some(d) = ev.data.as_mut() {
            redactor.redact_data(d);
        }
        truncate_msg(&mut ev.msg);
        if !supplied.seq {
            ev.seq = seq;
            seq += 1;
        }
        line_out.clear();
        ev.write_json(&mut line_out);
        out.write_all(&line_out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
