//! `logship redact`: stdin to stdout through the agent's redaction, exactly
//! one output line per input line, in order, PEM state carried across lines.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use super::ConfigArg;
use crate::redact::{Redactor, StreamState};

pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let cfg = args.load_or_default()?;
    let redactor = Redactor::new(&cfg.redaction).map_err(anyhow::Error::msg)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut state = StreamState::default();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let had_newline = raw.last() == Some(&b'\n');
        if had_newline {
            raw.pop();
        }
        // Valid UTF-8 (the common case) is moved, not copied; invalid bytes
        // become U+FFFD, as in the agent, and the line is still written.
        let mut line = match String::from_utf8(std::mem::take(&mut raw)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        redactor.redact_msg(&mut state, &mut line);
        out.write_all(line.as_bytes())?;
        if had_newline {
            out.write_all(b"\n")?;
        }
        raw = line.into_bytes();
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
