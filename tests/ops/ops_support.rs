//! Finding the external tools the ops tests drive (systemd-analyze,
//! cargo-deb, kubernetes-validate), as `.ci/install-ops-deps.sh` installs them.
//!
//! A missing tool fails the test with the command that installs it, unless
//! `LOGSHIP_OPS_ALLOW_MISSING_TOOLS=1`, which turns it into a printed skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `$LOGSHIP_CI_CACHE`, default `$HOME/.cache/logship-ci`.
pub fn ci_cache() -> PathBuf {
    std::env::var_os("LOGSHIP_CI_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/logship-ci")
        })
}

/// The tool's path, looked up in the CI cache and then on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let cache = ci_cache();
    let mut dirs = vec![cache.join("bin"), cache.join("venv/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The tool, or `None` after printing why the test is skipped; panics when
/// skipping is not allowed.
pub fn require_tool(name: &str, test: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    let why = format!(
        "{test}: `{name}` not found in {}/{{bin,venv/bin}} or PATH; \
         run `bash .ci/install-ops-deps.sh`",
        ci_cache().display()
    );
    if std::env::var("LOGSHIP_OPS_ALLOW_MISSING_TOOLS").as_deref() == Ok("1") {
        eprintln!("SKIPPED {why} (LOGSHIP_OPS_ALLOW_MISSING_TOOLS=1)");
        None
    } else {
        panic!("{why}, or set LOGSHIP_OPS_ALLOW_MISSING_TOOLS=1 to skip");
    }
}

/// Run a command; panic with its output unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
