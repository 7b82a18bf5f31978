//! `logship run`: the agent.

use std::process::ExitCode;

use super::ConfigArg;

pub fn run(_args: &ConfigArg) -> anyhow::Result<ExitCode> {
    anyhow::bail!("run: not built yet")
}
