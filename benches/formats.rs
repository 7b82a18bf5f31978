//! Micro-benchmarks of SPEC §9: each named format's parser, and the record
//! steps (`pipeline::records`) with and without multiline grouping.
//!
//! Parser inputs are the shared corpus's real lines where it has them
//! (`../shared/corpus/formats`, or `$LOGSHIP_CORPUS`), else generated lines
//! of the same shape. The grouping benches run a Java-heavy input (a third
//! of the lines in stack traces) through the whole record path — unwrap,
//! normalize, redact, group, finish — against the same count of plain
//! lines through the direct line path, so the two figures compare.

use std::hint::black_box;
use std::time::Duration;

mod common;
use common::{bytes_of, lines_or, push_records};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logship::config::{Format, MultilineConfig, MultilineMode};
use logship::event::{Event, Tier};
use logship::normalize::formats::{combined, cri, docker, klog, syslog};
use logship::normalize::Normalizer;
use logship::pipeline::line::{LinePath, Stream};
use logship::pipeline::multiline::{Rules, Shape};
use logship::pipeline::records::RecordSpec;
use logship::redact::{RedactionConfig, Redactor, StreamState};
use logship::source::tailer::Line;

const NOW_MS: i64 = 1_795_319_384_000;

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn bench_parsers(c: &mut Criterion) {
    let mut g = group(c, "parse");
    let inputs = [
        (
            "cri",
            lines_or(&["formats/cri/containerd_logs-0_000011112222333344445555666677778888/logs/0.log"], 2000, |i| {
                format!("2026-11-22T03:49:{:02}.669794202Z stdout F request {i} served in 3ms", i % 60)
            }),
        ),
        (
            "docker",
            lines_or(&["formats/docker-json/socks_session-db-fdd649d68-cq5sp_session-db.log"], 2000, |i| {
                format!(r#"{{"log":"request {i} served\n","stream":"stdout","time":"2026-11-22T03:49:44.1Z"}}"#)
            }),
        ),
        (
            "syslog",
            lines_or(&["formats/syslog/logfile_haproxy.0"], 2000, |i| {
                format!("<30>Nov 22 03:49:{:02} web-1 api[{i}]: request served", i % 60)
            }),
        ),
        (
            "combined",
            lines_or(&["formats/access/logfile_shop_access_log.0"], 2000, |i| {
                format!(r#"10.0.0.{} - - [22/Nov/2026:03:49:44 +0000] "GET /i/{i} HTTP/1.1" 200 512 "-" "curl/8""#, i % 256)
            }),
        ),
        (
            "klog",
            (
                (0..2000)
                    .map(|i| format!("I1122 03:49:{:02}.123456       1 controller.go:{i}] synced pod default/web-{i}", i % 60))
                    .collect(),
                "generated",
            ),
        ),
    ];
    for (name, (lines, origin)) in &inputs {
        g.throughput(Throughput::Bytes(bytes_of(lines)));
        let id = BenchmarkId::new(*name, format!("{origin}/{}lines", lines.len()));
        g.bench_function(id, |b| {
            b.iter(|| {
                for l in lines {
                    match *name {
                        "cri" => drop(black_box(cri::parse(l))),
                        "docker" => drop(black_box(docker::parse(l))),
                        "syslog" => drop(black_box(syslog::parse(l, NOW_MS))),
                        "combined" => drop(black_box(combined::parse(l))),
                        _ => drop(black_box(klog::parse(l, NOW_MS))),
                    }
                }
            })
        });
    }
    g.finish();
    // The same lines through the whole normalizer with the format named.
    let mut g = group(c, "normalize_format");
    for (name, (lines, origin)) in &inputs[2..] {
        let format = Format::parse(name).unwrap();
        let n = Normalizer::plain("app", Tier::System, format, "h");
        let mut ev = Event::empty(Tier::System);
        g.throughput(Throughput::Bytes(bytes_of(lines)));
        g.bench_function(
            BenchmarkId::new(*name, format!("{origin}/{}lines", lines.len())),
            |b| {
                b.iter(|| {
                    for l in lines {
                        black_box(n.normalize(l, NOW_MS, &[], &mut ev));
                    }
                })
            },
        );
    }
    g.finish();
}

/// Lines of a Java service: two of three records single lines, one a
/// chained exception of 20-30 lines.
pub fn java_heavy(n_records: usize) -> Vec<String> {
    let mut out = Vec::new();
    for r in 0..n_records {
        let ts = format!("2026-11-22 03:49:{:02}.{:03}", r % 60, r % 1000);
        if r % 3 == 2 {
            out.push(format!(
                "{ts} ERROR [exec-{}] c.a.orders.OrderService - could not load order {r}",
                r % 8
            ));
            out.push(format!(
                "java.lang.IllegalStateException: order {r} not found"
            ));
            for j in 0..(18 + r % 10) {
                out.push(format!(
                    "\tat com.acme.orders.Layer{j}.call(Layer{j}.java:{})",
                    10 + j
                ));
            }
            out.push("Caused by: java.io.IOException: connection reset".into());
            out.push("\tat com.acme.db.Pool.get(Pool.java:88)".into());
            out.push("\t... 12 more".into());
        } else {
            out.push(format!(
                "{ts} INFO  [exec-{}] c.a.orders.OrderController - GET /orders/{r} 200 in {}ms",
                r % 8,
                r % 50
            ));
        }
    }
    out
}

fn bench_grouping(c: &mut Criterion) {
    let redactor = Redactor::new(&RedactionConfig::default()).unwrap();
    let java = java_heavy(3000);
    // Plain lines of the same sizes: the direct line path, no grouping.
    let plain: Vec<String> = java
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "2026-11-22 03:49:44.{:03} INFO  {}",
                i % 1000,
                l.trim_start()
            )
        })
        .collect();
    let mut g = group(c, "records");
    g.throughput(Throughput::Bytes(bytes_of(&java)));
    // Classification alone.
    let rules = Rules::new(&MultilineConfig::with_mode(MultilineMode::Auto)).unwrap();
    g.bench_function(
        BenchmarkId::new("classify_auto", format!("java/{}lines", java.len())),
        |b| {
            b.iter(|| {
                let mut open = None;
                for l in &java {
                    let mut shape = Shape::Plain;
                    black_box(rules.classify(open, l, &mut shape));
                    open = Some(shape);
                }
            })
        },
    );
    let normalizer = Normalizer::plain("app", Tier::System, Format::Text, "h");
    let path = LinePath {
        normalizer: &normalizer,
        redactor: &redactor,
    };
    for mode in [MultilineMode::Java, MultilineMode::Auto] {
        let ml = MultilineConfig::with_mode(mode);
        let spec = RecordSpec::grouped(Rules::new(&ml).unwrap(), &ml, false);
        g.bench_function(
            BenchmarkId::new(
                format!("group_{}", mode.as_str()),
                format!("java/{}lines", java.len()),
            ),
            |b| {
                b.iter(|| {
                    push_records(path, &spec, &java, NOW_MS, &mut |e| {
                        black_box(e);
                    });
                })
            },
        );
    }
    g.throughput(Throughput::Bytes(bytes_of(&plain)));
    g.bench_function(
        BenchmarkId::new("line_path_text", format!("plain/{}lines", plain.len())),
        |b| {
            b.iter(|| {
                let (mut state, mut seq) = (StreamState::default(), 0);
                let mut ev = Event::empty(Tier::System);
                for l in &plain {
                    let line = Line {
                        bytes: l.as_bytes(),
                        truncated: false,
                        at: 0,
                    };
                    let stream = Stream {
                        path_ids: &[],
                        redact: &mut state,
                    };
                    path.event(line, stream, NOW_MS, &mut seq, &mut ev);
                    black_box(&ev);
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench_parsers, bench_grouping);
criterion_main!(benches);
