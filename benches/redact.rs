//! Redaction throughput: benign text, JSON lines, secret-dense lines.
//!
//! Benign text comes from the shared corpus's `loghub/*.log`
//! (`$LOGSHIP_CORPUS`, or `shared/corpus` beside the checkout or a parent of
//! it) when present and is generated otherwise, so the bench runs anywhere.
//! Throughput is reported in bytes per second of input. Each set is also
//! compressed with gzip level 1 (`gzip1/<set>`, flate2) in the same run: the
//! yardstick that BENCHMARKS.md sets every CPU figure beside.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logship::redact::{RedactionConfig, Redactor, StreamState};

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

fn benign_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let dir = corpus_dir().map(|d| d.join("loghub"));
    if let Some(Ok(entries)) = dir.map(std::fs::read_dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
        {
            if let Ok(b) = std::fs::read(p) {
                lines.extend(String::from_utf8_lossy(&b).lines().map(str::to_string));
            }
        }
    }
    if lines.is_empty() {
        for i in 0..20_000 {
            lines.push(format!(
                "2024-05-{:02}T10:{:02}:{:02}.123Z INFO [worker-{}] com.example.Service: handled request id={} path=/api/v1/items/{} status=200 duration_ms={} session opened for user u{}",
                i % 28 + 1, i % 60, (i * 7) % 60, i % 8, i * 31, i % 977, i % 500, i % 50
            ));
        }
    }
    lines
}

fn json_lines() -> Vec<String> {
    (0..20_000)
        .map(|i| {
            format!(
                r#"{{"time":"2024-05-01T10:00:{:02}Z","level":"info","msg":"request done","reqId":"r-{}","path":"/api/items/{}","status":200,"duration_ms":{},"user":"u{}","tokens_used":{}}}"#,
                i % 60, i, i % 977, i % 500, i % 50, i % 4000
            )
        })
        .collect()
}

fn dense_lines() -> Vec<String> {
    let an = |n: usize, s: usize| -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|i| A[(i * 7 + s * 13) % A.len()] as char)
            .collect()
    };
    (0..20_000)
        .map(|i| match i % 6 {
            0 => format!("2024-05-01 INFO login user=bob password={} ok", an(12, i)),
            1 => format!("2024-05-01 DEBUG Authorization: Bearer {}", an(40, i)),
            2 => format!("2024-05-01 WARN token ghp_{} leaked to env", an(36, i)),
            3 => format!(
                r#"{{"level":"info","api_key":"{}","url":"postgres://app:{}@db/x"}}"#,
                an(32, i),
                an(10, i)
            ),
            4 => format!("2024-05-01 INFO aws key AKIA{} used", "ABCDEFGHIJKLMNOP"),
            _ => format!(
                "2024-05-01 INFO GET /cb?code=1&access_token={}&sig={}",
                an(30, i),
                an(20, i)
            ),
        })
        .collect()
}

fn bench_set(c: &mut Criterion, name: &str, lines: &[String]) {
    let r = Redactor::new(&RedactionConfig::default()).unwrap();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut g = c.benchmark_group("redact");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut state = StreamState::default();
            let mut n = 0;
            for l in lines {
                let mut s = l.clone();
                n += r.redact_msg(&mut state, &mut s);
                black_box(&s);
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("gzip1");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
            for l in lines {
                let _ = z.write_all(l.as_bytes());
                let _ = z.write_all(b"\n");
            }
            black_box(z.finish().map(|v| v.len()).unwrap_or(0))
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_set(c, "benign_text", &benign_lines());
    bench_set(c, "json_lines", &json_lines());
    bench_set(c, "secret_dense", &dense_lines());
}

criterion_group!(redact, benches);
criterion_main!(redact);
