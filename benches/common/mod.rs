//! What the line-path benches share: corpus input with generated fallback,
//! and pushing lines through a record [`Assembler`] as the pipeline does.
//! (Each bench is its own crate; this file is a module of each.)

use std::path::{Path, PathBuf};
use std::time::Instant;

use logship::event::Event;
use logship::pipeline::line::LinePath;
use logship::pipeline::records::{Assembler, Ctx, RecordSpec};
use logship::redact::StreamState;
use logship::source::tailer::Line;

/// `$LOGSHIP_CORPUS`, else `shared/corpus` beside the checkout, if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LOGSHIP_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.is_dir().then_some(dir)
}

/// Non-empty lines of the corpus files at `rel` (files that are missing are
/// skipped), with CR stripped as the line splitter would.
pub fn corpus_lines(rel: &[&str]) -> Vec<String> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in rel {
        if let Ok(bytes) = std::fs::read(dir.join(r)) {
            let text = String::from_utf8_lossy(&bytes);
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
    }
    out
}

/// Corpus lines if there are any, else `n` generated ones.
pub fn lines_or(
    rel: &[&str],
    n: usize,
    gen: impl Fn(usize) -> String,
) -> (Vec<String>, &'static str) {
    let real = corpus_lines(rel);
    if real.is_empty() {
        ((0..n).map(gen).collect(), "generated")
    } else {
        (real, "corpus")
    }
}

/// Input bytes of `lines`, newlines included.
pub fn bytes_of(lines: &[String]) -> u64 {
    lines.iter().map(|l| l.len() as u64 + 1).sum()
}

/// `lines` as one file's stream through a fresh assembler, then its last
/// record flushed; every finished event goes to `emit`.
pub fn push_records(
    path: LinePath<'_>,
    spec: &RecordSpec,
    lines: &[String],
    wall_ms: i64,
    emit: &mut dyn FnMut(&Event),
) {
    let (mut state, mut seq) = (StreamState::default(), 0);
    let mut a = Assembler::default();
    let mut cx = Ctx {
        path,
        spec,
        path_ids: &[],
        redact: &mut state,
        now: Instant::now(),
        wall_ms,
        next_seq: &mut seq,
    };
    let mut at = 0;
    for l in lines {
        let line = Line {
            bytes: l.as_bytes(),
            truncated: false,
            at,
        };
        a.push(line, at, &mut cx, emit);
        at += l.len() as u64 + 1;
    }
    a.flush(&mut cx, emit);
}
