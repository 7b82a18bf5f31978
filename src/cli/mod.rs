//! The command line (SPEC §5): one file per subcommand.

pub mod check;
pub mod checkpoint;
pub mod normalize;
pub mod query;
pub mod redact;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "logship",
    version,
    about = "Tail, normalize, redact and ship logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent (the default).
    Run(RunArgs),
    /// Validate the config and print a summary with secrets masked.
    Check(ConfigArg),
    /// Redact stdin to stdout, one output line per input line.
    Redact(ConfigArg),
    /// Turn raw lines on stdin into unified events on stdout.
    Normalize(normalize::Args),
    /// Events from local segments and the bucket, merged and ordered.
    Query(Box<query::Args>),
    /// Repair the checkpoint: `logship checkpoint repair [-c FILE]`.
    Checkpoint(checkpoint::Args),
    /// Print version and build information.
    Version,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArg {
    /// Config file (default: $LOGSHIP_CONFIG, /etc/logship/agent.toml, ./agent.toml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
}

/// `logship run`: the config, and how the agent logs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The agent's own log lines on stderr: "text" (colour only on a
    /// terminal, never with NO_COLOR) or "json" (one object per line).
    /// Default: $LOGSHIP_LOG_FORMAT, else text.
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<crate::ops::log::LogFormat>,
}

impl ConfigArg {
    pub fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(crate::config::default_path)
    }

    /// Load the config, or the built-in defaults when no `-c` was given and
    /// no default file exists (filters such as `redact` work without one).
    pub fn load_or_default(&self) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        let path = self.path();
        if self.config.is_none() && !path.exists() {
            return Ok(crate::config::Config::default());
        }
        crate::config::load(&path).map(|l| l.config)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(a) => run::run(&a),
        Command::Check(a) => check::run(&a),
        Command::Redact(a) => redact::run(&a),
        Command::Normalize(a) => normalize::run(&a),
        Command::Query(a) => query::run(*a),
        Command::Checkpoint(a) => checkpoint::run(&a),
        Command::Version => {
            println!(
                "logship {} ({} {})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logship: {e:#}");
            ExitCode::FAILURE
        }
    }
}
