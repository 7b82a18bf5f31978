//! The sealing compressor on a segment like the agent writes: libdeflate in
//! 1 MiB gzip members (what `segment::seal` does) at the levels worth
//! choosing between, beside zlib-rs streaming one member (what it did
//! before) at levels 1 and 6.
//!
//! The segment is 16 MiB of NDJSON events made the way the agent makes them
//! (normalize + `Event::write_json`) from loghub lines of the shared corpus
//! (`$LOGSHIP_CORPUS`, or `shared/corpus` beside the checkout or a parent
//! of it), each line suffixed with a counter as `bench/e2e.py` does, so no
//! two events are equal and the ratio is the end-to-end one. Without the
//! corpus, generated lines of a similar shape are used (ratios then differ).
//! Each bench prints its compression ratio (NDJSON bytes / gzip bytes).
//!
//! Criterion measures wall time; on a shared machine note the load average,
//! and prefer `valgrind --tool=callgrind` instruction counts for before /
//! after comparisons (see bench/README.md).

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logship::config::Format;
use logship::event::{Event, Tier};
use logship::normalize::Normalizer;
use logship::segment::seal::SegmentCompressor;

const NOW_MS: i64 = 1_763_780_000_000;
/// A full system segment (`segments.max_bytes` default).
const SEGMENT_BYTES: usize = 16 << 20;

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("LOGSHIP_CORPUS") {
        return Some(PathBuf::from(d));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|p| p.join("shared/corpus"))
        .find(|p| p.is_dir())
}

/// loghub lines (sorted by file name, as bench/e2e.py reads them), or
/// generated ones.
fn template_lines() -> (Vec<String>, &'static str) {
    let mut files: Vec<PathBuf> = corpus_dir()
        .and_then(|d| std::fs::read_dir(d.join("loghub")).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
        out.extend(
            text.lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if !out.is_empty() {
        return (out, "loghub");
    }
    let gen = (0..4000)
        .map(|i| {
            format!(
                "2024-01-15T10:{:02}:{:02}.{:03}Z {} [worker-{}] request served path=/api/v1/items/{i} status=200 ms={}",
                i / 60 % 60,
                i % 60,
                i % 1000,
                ["INFO", "WARN", "ERROR", "DEBUG"][i % 4],
                i % 8,
                i % 997
            )
        })
        .collect();
    (gen, "generated")
}

/// A 16 MiB segment of NDJSON events, as the agent writes them.
fn segment_file(dir: &Path) -> (PathBuf, u64, &'static str) {
    let (templates, origin) = template_lines();
    let n = Normalizer::plain("app", Tier::System, Format::Auto, "bench");
    let mut body = Vec::with_capacity(SEGMENT_BYTES + (1 << 16));
    let mut ev = Event::empty(Tier::System);
    let mut i = 0usize;
    while body.len() < SEGMENT_BYTES {
        let line = format!("{} #{i}", templates[i % templates.len()]);
        n.normalize(&line, NOW_MS, &[], &mut ev);
        ev.seq = i as u64;
        ev.write_json(&mut body);
        i += 1;
    }
    let path = dir.join("segment.ndjson");
    std::fs::write(&path, &body).expect("write bench segment");
    (path, body.len() as u64, origin)
}

/// What the sealer did before: zlib-rs (flate2), one streamed member.
fn zlib_rs(src: &Path, len: u64, dst: &Path, level: u32) -> u64 {
    use std::io::Read;
    let input = std::fs::File::open(src).expect("open").take(len);
    let out =
        std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(dst).expect("create"));
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::new(level));
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, input);
    std::io::copy(&mut reader, &mut gz).expect("compress");
    gz.finish().expect("finish").flush().expect("flush");
    std::fs::metadata(dst).map(|m| m.len()).unwrap_or(0)
}

fn bench_compress(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, len, origin) = segment_file(dir.path());
    let dst = dir.path().join("segment.ndjson.gz");
    let mut g = c.benchmark_group("seal");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(len));
    let ratio = |gz: u64| len as f64 / gz.max(1) as f64;
    for level in [1u32, 4, 6, 9] {
        let mut z = SegmentCompressor::new(level);
        let (gz, _) = z.compress(&src, len, &dst).expect("compress");
        eprintln!(
            "seal/libdeflate level {level}: {len} -> {gz} bytes, ratio {:.2}",
            ratio(gz)
        );
        g.bench_function(
            BenchmarkId::new(
                "libdeflate",
                format!("level{level}/{origin}/{}MiB", len >> 20),
            ),
            |b| b.iter(|| black_box(z.compress(&src, len, &dst).expect("compress"))),
        );
    }
    for level in [1u32, 6] {
        let gz = zlib_rs(&src, len, &dst, level);
        eprintln!(
            "seal/zlib-rs level {level}: {len} -> {gz} bytes, ratio {:.2}",
            ratio(gz)
        );
        g.bench_function(
            BenchmarkId::new("zlib-rs", format!("level{level}/{origin}/{}MiB", len >> 20)),
            |b| b.iter(|| black_box(zlib_rs(&src, len, &dst, level))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_compress);
criterion_main!(benches);
