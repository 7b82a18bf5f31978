//! `logship normalize`: raw lines on stdin to unified events on stdout.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Tier of the events.
    #[arg(long)]
    pub tier: String,
    /// Line format: auto, json, logfmt, text.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// `src` of the events.
    #[arg(long, default_value = "stdin")]
    pub src: String,
}

pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("normalize: not built yet")
}
