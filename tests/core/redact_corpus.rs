//! Every line of the project's benign fixtures passes `redact_msg`
//! unchanged: access logs, JSON application logs, syslog, build output and
//! stack traces full of things that look like secrets and are not (hashes,
//! UUIDs, request ids, `password_length=12`, `token bucket`, URLs without
//! credentials). The fixtures are small and committed under
//! `tests/fixtures/redact/benign/`, so the suite depends on nothing outside
//! the repository.
//!
//! A larger corpus can be checked the same way on demand:
//! `LOGSHIP_REDACT_CORPUS=/path/to/corpus cargo test --test core redact_corpus`
//! (its `formats/` tree and `loghub/*.log`); a set but missing path fails.

use std::path::{Path, PathBuf};

use logship::redact::{RedactionConfig, Redactor, StreamState};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "LICENSES") {
                files(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

/// Redact every line of `paths`; returns (lines, changed lines).
fn run(paths: &[PathBuf]) -> (usize, Vec<String>) {
    let r = Redactor::new(&RedactionConfig::default()).unwrap();
    let (mut lines, mut changed) = (0usize, Vec::new());
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let mut state = StreamState::default();
        for (i, line) in text.lines().enumerate() {
            lines += 1;
            let mut s = line.to_string();
            r.redact_msg(&mut state, &mut s);
            if s != line {
                changed.push(format!("{}:{}: {s}", p.display(), i + 1));
            }
        }
    }
    (lines, changed)
}

fn assert_unchanged(lines: usize, changed: &[String]) {
    assert!(
        changed.is_empty(),
        "{} of {lines} benign lines changed:\n{}",
        changed.len(),
        changed[..changed.len().min(20)].join("\n")
    );
}

#[test]
fn redact_benign_fixtures_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redact/benign");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let (lines, changed) = run(&paths);
    // The committed fixtures: five files, 510 lines.
    assert_eq!((paths.len(), lines), (5, 510), "{paths:?}");
    assert_unchanged(lines, &changed);
}

#[test]
fn redact_external_corpus_unchanged_when_asked() {
    let Some(root) = std::env::var_os("LOGSHIP_REDACT_CORPUS").map(PathBuf::from) else {
        return; // opt-in; the fixtures above always run
    };
    assert!(
        root.is_dir(),
        "LOGSHIP_REDACT_CORPUS={} is not a directory",
        root.display()
    );
    let mut paths = Vec::new();
    files(&root.join("formats"), &mut paths);
    if let Ok(entries) = std::fs::read_dir(root.join("loghub")) {
        paths.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log")),
        );
    }
    paths.sort();
    let (lines, changed) = run(&paths);
    assert!(lines > 0, "no lines under {}", root.display());
    assert_unchanged(lines, &changed);
}
