//! The agent's own log output on stderr.
//!
//! Two formats: `text` for people (colour only when stderr is a terminal and
//! `NO_COLOR` is unset or empty, so `journalctl` and `kubectl logs` never show
//! escape sequences) and `json` (one object per line) for log pipelines that
//! parse what they collect. The format comes from `--log-format`, else
//! `$LOGSHIP_LOG_FORMAT`, else `text`; a value that is neither is an error at
//! start, not a silent fallback.

use std::io::IsTerminal;
use std::str::FromStr;

/// The variable that chooses the format when `--log-format` is not given.
pub const FORMAT_ENV: &str = "LOGSHIP_LOG_FORMAT";

/// How the agent writes its own log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// A `--log-format` / `$LOGSHIP_LOG_FORMAT` value that is not a format.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?}; use \"text\" or \"json\"")]
pub struct UnknownFormat(String);

impl FromStr for LogFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

impl LogFormat {
    /// The flag's value if given, else the environment's, else `text`.
    pub fn resolve(flag: Option<LogFormat>) -> anyhow::Result<LogFormat> {
        if let Some(f) = flag {
            return Ok(f);
        }
        match std::env::var(FORMAT_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                v.parse().map_err(|e| anyhow::anyhow!("{FORMAT_ENV}: {e}"))
            }
            _ => Ok(LogFormat::Text),
        }
    }
}

/// Whether text output may carry ANSI colour: only on a terminal, and never
/// when `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn colour_allowed(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Install the process-wide subscriber. `level` is the config's filter
/// (`RUST_LOG` syntax); `RUST_LOG` in the environment wins over it.
pub fn init(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, or a library caller) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR");
            let ansi = colour_allowed(std::io::stderr().is_terminal(), no_color.as_deref());
            builder.with_ansi(ansi).try_init()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn formats_parse_case_insensitively_and_reject_others() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" Text ".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let e = "xml".parse::<LogFormat>().unwrap_err().to_string();
        assert_eq!(e, r#"unknown log format "xml"; use "text" or "json""#);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
    }
}
