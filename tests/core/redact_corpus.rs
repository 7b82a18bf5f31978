//! Every line of the shared benign corpus passes `redact_msg` unchanged.
//!
//! The corpus is not part of the repository; it is looked for at
//! `$CARGO_MANIFEST_DIR/../shared/corpus` and the test is skipped (with a
//! note on stderr) when it is absent.

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

#[test]
fn redact_benign_corpus_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.is_dir() {
        eprintln!("skipping: no corpus at {}", root.display());
        return;
    }
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
    let r = Redactor::new(&RedactionConfig::default()).unwrap();
    let (mut lines, mut changed) = (0usize, Vec::new());
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let mut state = StreamState::default();
        for (i, line) in text.split('\n').enumerate() {
            lines += 1;
            let mut s = line.to_string();
            r.redact_msg(&mut state, &mut s);
            if s != line {
                changed.push(format!("{}:{}: {s}", p.display(), i + 1));
            }
        }
    }
    assert!(lines > 30_000, "corpus looks incomplete: {lines} lines");
    assert!(
        changed.is_empty(),
        "{} of {lines} benign lines changed:\n{}",
        changed.len(),
        changed
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
