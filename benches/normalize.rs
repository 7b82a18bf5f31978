//! Micro-benchmarks of the per-line hot path: normalize, serialize, split.
//! (The sealing compressor has its own: `benches/compress.rs`.)
//!
//! Inputs are real lines from the shared corpus (`../shared/corpus`, or
//! `$LOGSHIP_CORPUS`) when it is present, so the numbers reflect the line
//! shapes the agent meets in production; without it the benches fall back
//! to generated lines of the same shapes, so `cargo bench` always runs.
//! Measurement times are short on purpose: the whole run takes a few
//! minutes on a shared two-core machine. Throughput is reported in input
//! bytes; each bench id carries its line count so ns/line is one division.

use std::hint::black_box;
use std::time::Duration;

mod common;
use common::{bytes_of, corpus_dir, lines_or, push_records};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logship::config::Format;
use logship::event::{Event, Tier};
use logship::normalize::Normalizer;
use logship::pipeline::line::LinePath;
use logship::pipeline::records::RecordSpec;
use logship::redact::{RedactionConfig, Redactor};
use logship::source::lines::{split, LineRef};

/// A fixed "now", so syslog year inference does not depend on the clock.
const NOW_MS: i64 = 1_763_780_000_000;
/// The tailer's read size is 1 MiB; `split` sees chunks of that size.
const CHUNK_BYTES: usize = 1 << 20;

fn syslog_lines() -> (Vec<String>, &'static str) {
    lines_or(
        &[
            "loghub/Linux_2k.log",
            "loghub/OpenSSH_2k.log",
            "loghub/Mac_2k.log",
        ],
        2000,
        |i| {
            format!(
                "Jun 14 15:{:02}:{:02} combo sshd(pam_unix)[{}]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=10.0.{}.{}",
                i / 60 % 60,
                i % 60,
                19000 + i,
                i / 256 % 256,
                i % 256
            )
        },
    )
}

fn iso_lines() -> (Vec<String>, &'static str) {
    lines_or(
        &[
            "loghub/Hadoop_2k.log",
            "loghub/Zookeeper_2k.log",
            "loghub/Windows_2k.log",
        ],
        2000,
        |i| {
            format!(
                "2015-10-18 18:{:02}:{:02},{:03} {} [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: event {i} for application appattempt_1445144423722_0020_000001",
                i / 60 % 60,
                i % 60,
                i % 1000,
                ["INFO", "WARN", "ERROR", "DEBUG"][i % 4]
            )
        },
    )
}

fn json_lines() -> (Vec<String>, &'static str) {
    let (mut lines, origin) = lines_or(
        &[
            "formats/json/logfile_bunyan.0",
            "formats/json/logfile_pino.0",
            "formats/json/mongodb-debian-4.4.4-json.log",
            "formats/docker-json/docker_logs-0_222233334444555566667777888899990000/logs/0.log",
        ],
        1000,
        |i| {
            format!(
                r#"{{"level":"{}","time":"2023-03-24T14:26:{:02}.243Z","msg":"request {i} served","reqId":"r-{i}","buildId":"b-{}","status":200,"durationMs":{}}}"#,
                ["info", "warn", "error", "debug"][i % 4],
                i % 60,
                i % 17,
                i % 997
            )
        },
    );
    // Only lines the normalizer takes as JSON objects.
    lines.retain(|l| l.trim_start().starts_with('{'));
    (lines, origin)
}

fn logfmt_lines() -> (Vec<String>, &'static str) {
    lines_or(&["formats/logfmt/logfile_logfmt.0"], 1000, |i| {
        format!(
            r#"time="2021-09-15T21:17:{:02}.220731Z" level={} msg="error retrieving pod status: pod {i} is not found" namespace=ns-{} pod=hello-{i} reqId=r-{i}"#,
            i % 60,
            ["info", "warn", "error", "debug"][i % 4],
            i % 7
        )
    })
}

fn normalizer() -> Normalizer {
    Normalizer::plain("app", Tier::System, Format::Auto, "bench-host")
}

fn bench_normalize(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let n = normalizer();
    for (name, (lines, origin)) in [
        ("text_syslog", syslog_lines()),
        ("text_iso", iso_lines()),
        ("json", json_lines()),
        ("logfmt", logfmt_lines()),
    ] {
        g.throughput(Throughput::Bytes(bytes_of(&lines)));
        let id = BenchmarkId::new(name, format!("{origin}/{}lines", lines.len()));
        let mut ev = Event::empty(Tier::System);
        g.bench_function(id, |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(n.normalize(black_box(l), NOW_MS, &[], &mut ev));
                }
            })
        });
    }
    g.finish();
}

/// The same lines with the format named (`text`, `json`, `logfmt`): what a
/// source that is not `auto` pays per line. Kept free of newer APIs so the
/// same file measures a baseline build too (BENCHMARKS.md, issue 10).
fn bench_normalize_fixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize_fixed");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, format, (lines, origin)) in [
        ("text_syslog", Format::Text, syslog_lines()),
        ("text_iso", Format::Text, iso_lines()),
        ("json", Format::Json, json_lines()),
        ("logfmt", Format::Logfmt, logfmt_lines()),
    ] {
        let n = Normalizer::plain("app", Tier::System, format, "bench-host");
        g.throughput(Throughput::Bytes(bytes_of(&lines)));
        let id = BenchmarkId::new(name, format!("{origin}/{}lines", lines.len()));
        let mut ev = Event::empty(Tier::System);
        g.bench_function(id, |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(n.normalize(black_box(l), NOW_MS, &[], &mut ev));
                }
            })
        });
    }
    g.finish();
}

/// A mix of every line shape, normalized, as the pipeline would hold them.
fn mixed_events() -> Vec<Event> {
    let n = normalizer();
    let mut events = Vec::new();
    for (lines, _) in [syslog_lines(), iso_lines(), json_lines(), logfmt_lines()] {
        for l in lines {
            let mut ev = Event::empty(Tier::System);
            n.normalize(&l, NOW_MS, &[], &mut ev);
            ev.seq = events.len() as u64;
            events.push(ev);
        }
    }
    events
}

fn bench_write_json(c: &mut Criterion) {
    let events = mixed_events();
    let mut out = Vec::with_capacity(1 << 16);
    let total: u64 = events
        .iter()
        .map(|e| {
            out.clear();
            e.write_json(&mut out);
            out.len() as u64
        })
        .sum();
    let mut g = c.benchmark_group("event");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(total));
    g.bench_function(
        BenchmarkId::new("write_json", format!("{}events", events.len())),
        |b| {
            b.iter(|| {
                for e in &events {
                    out.clear();
                    e.write_json(&mut out);
                    black_box(&out);
                }
            })
        },
    );
    g.finish();
}

/// Whole corpus lines (CRLF kept, as on disk) repeated up to `size` bytes.
fn raw_chunk(size: usize) -> Vec<u8> {
    let (mut lines, _) = syslog_lines();
    lines.extend(iso_lines().0);
    let mut chunk = Vec::with_capacity(size + 1024);
    'fill: loop {
        for l in &lines {
            if chunk.len() + l.len() + 2 > size {
                break 'fill;
            }
            chunk.extend_from_slice(l.as_bytes());
            chunk.extend_from_slice(b"\r\n");
        }
    }
    // The tail is an incomplete line, as a chunk read mid-write would have.
    chunk.resize(size, b'x');
    chunk
}

fn bench_split(c: &mut Criterion) {
    let chunk = raw_chunk(CHUNK_BYTES);
    let mut out: Vec<LineRef> = Vec::new();
    let lines = split(&chunk, false, &mut out);
    let mut g = c.benchmark_group("lines");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function(
        BenchmarkId::new("split", format!("1MiB/{}lines", out.len())),
        |b| b.iter(|| black_box(split(black_box(&chunk), false, &mut out))),
    );
    black_box(lines);
    g.finish();
}

/// Every loghub line (the end-to-end benchmark's input, `bench/e2e.py`), or
/// the generated shapes without the corpus.
fn loghub_lines() -> (Vec<String>, &'static str) {
    let files: Vec<String> = corpus_dir()
        .and_then(|d| std::fs::read_dir(d.join("loghub")).ok())
        .map(|rd| {
            let mut v: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .map(|n| format!("loghub/{n}"))
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let rel: Vec<&str> = files.iter().map(String::as_str).collect();
    let (mut lines, origin) = lines_or(&rel, 0, |_| String::new());
    if lines.is_empty() {
        lines = syslog_lines().0;
        lines.extend(iso_lines().0);
    }
    (lines, origin)
}

/// What the agent does per line of a default (`format = "auto"`) source
/// before the segment write: the record steps' container check, normalize,
/// redact (on and off), serialize. The CPU of the write path less reading,
/// writing and compressing (BENCHMARKS.md, issue 15).
fn bench_line_path(c: &mut Criterion) {
    let (lines, origin) = loghub_lines();
    let normalizer = normalizer();
    let spec = RecordSpec::lines(true);
    let mut g = c.benchmark_group("line_path");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes_of(&lines)));
    for (name, enabled) in [("auto", false), ("auto_redacted", true)] {
        let cfg = RedactionConfig {
            enabled,
            ..RedactionConfig::default()
        };
        let redactor = Redactor::new(&cfg).expect("default redaction config");
        let path = LinePath {
            normalizer: &normalizer,
            redactor: &redactor,
        };
        let mut out = Vec::with_capacity(1 << 16);
        g.bench_function(
            BenchmarkId::new(name, format!("{origin}/{}lines", lines.len())),
            |b| {
                b.iter(|| {
                    push_records(path, &spec, &lines, NOW_MS, &mut |e| {
                        out.clear();
                        e.write_json(&mut out);
                        black_box(&out);
                    });
                })
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_normalize,
    bench_normalize_fixed,
    bench_write_json,
    bench_split,
    bench_line_path
);
criterion_main!(benches);
