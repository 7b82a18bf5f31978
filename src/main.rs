//! `logship`: parse the command line and dispatch; nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    logship::cli::main()
}
