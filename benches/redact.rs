//! Redaction throughput: benign text, JSON lines, secret-dense lines.
//!
//! Benign text comes from the shared corpus's `loghub/*.log`
//! (`$LOGSHIP_CORPUS`, or `shared/corpus` beside the checkout or a parent of
//! it) when present and is generated otherwise, so the bench runs anywhere.
//! The secret-dense sets: `secret_dense` (six shapes, one or two secrets a
//! line, unchanged since round two so its figures compare) and
//! `dense_providers` (one to three secrets a line of about forty provider
//! formats, keyed values and passwords, in log, JSON, header, URL and env
//! contexts: issue #15 item 5). `LOGSHIP_REDACT_DUMP=<dir>` also writes
//! each set to `<dir>/<set>.log`, so `logship redact` can be timed (and
//! run under callgrind) on exactly these lines.
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

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }
}

const AN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const AN_: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
const HEX: &str = "0123456789abcdef";
const UP32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIG: &str = "0123456789";

/// A credential of one of about forty providers, or a keyed value.
fn provider_secret(r: &mut Rng) -> String {
    match r.below(44) {
        0 => format!("ghp_{}", r.chars(AN, 36)),
        1 => format!("gho_{}", r.chars(AN, 36)),
        2 => format!("github_pat_{}_{}", r.chars(AN, 22), r.chars(AN, 59)),
        3 => format!("glpat-{}", r.chars(AN_, 20)),
        4 => format!("AKIA{}", r.chars(UP32, 16)),
        5 => format!("ASIA{}", r.chars(UP32, 16)),
        6 => format!("AIza{}", r.chars(AN_, 35)),
        7 => format!("ya29.{}", r.chars(AN_, 100)),
        8 => format!(
            "xoxb-{}-{}-{}",
            r.chars(DIG, 12),
            r.chars(DIG, 13),
            r.chars(AN, 24)
        ),
        9 => format!("sk_live_{}", r.chars(AN, 60)),
        10 => format!("rk_live_{}", r.chars(AN, 24)),
        11 => format!("whsec_{}", r.chars(AN, 32)),
        12 => format!("sk-proj-{}T3BlbkFJ{}", r.chars(AN_, 74), r.chars(AN_, 74)),
        13 => format!("sk-ant-api03-{}AA", r.chars(AN_, 93)),
        14 => format!("hf_{}", r.chars(AN, 34)),
        15 => format!("npm_{}", r.chars(AN, 36)),
        16 => format!("SG.{}.{}", r.chars(AN_, 22), r.chars(AN_, 43)),
        17 => format!("SK{}", r.chars(HEX, 32)),
        18 => format!("key-{}", r.chars(HEX, 32)),
        19 => format!("shpat_{}", r.chars(HEX, 32)),
        20 => format!("dop_v1_{}", r.chars(HEX, 64)),
        21 => format!("dapi{}", r.chars(HEX, 32)),
        22 => format!("hvs.{}", r.chars(AN_, 90)),
        23 => format!("lin_api_{}", r.chars(AN, 40)),
        24 => format!("PMAK-{}-{}", r.chars(HEX, 24), r.chars(HEX, 34)),
        25 => format!("NRAK-{}", r.chars(UP32, 27)),
        26 => format!("glsa_{}_{}", r.chars(AN, 32), r.chars(HEX, 8)),
        27 => format!(
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
            r.chars(AN_, 60),
            r.chars(AN_, 43)
        ),
        28 => format!("sntryu_{}", r.chars(HEX, 64)),
        29 => format!("dckr_pat_{}", r.chars(AN_, 27)),
        30 => format!("{}:AA{}", r.chars(DIG, 10), r.chars(AN_, 33)),
        31 => format!("gsk_{}", r.chars(AN, 52)),
        32 => format!("{}.atlasv1.{}", r.chars(AN, 14), r.chars(AN_, 67)),
        33 => format!("{}-us{}", r.chars(HEX, 32), r.below(20) + 1),
        34 => format!("AKCp{}", r.chars(AN, 69)),
        35 => format!(
            "pat-na1-{}-{}-{}-{}-{}",
            r.chars(HEX, 8),
            r.chars(HEX, 4),
            r.chars(HEX, 4),
            r.chars(HEX, 4),
            r.chars(HEX, 12)
        ),
        36 => format!("rzp_live_{}", r.chars(AN, 14)),
        37 => format!("LTAI{}", r.chars(AN, 20)),
        38 => format!("sbp_{}", r.chars(HEX, 40)),
        39 => format!("pplx-{}", r.chars(AN, 48)),
        40 => format!("TWILIO_AUTH_TOKEN={}", r.chars(HEX, 32)),
        41 => format!("DD_API_KEY={}", r.chars(HEX, 32)),
        42 => format!("AWS_SECRET_ACCESS_KEY={}", r.chars(B64, 40)),
        _ => format!(
            "HEROKU_API_KEY={}-{}-{}-{}-{}",
            r.chars(HEX, 8),
            r.chars(HEX, 4),
            r.chars(HEX, 4),
            r.chars(HEX, 4),
            r.chars(HEX, 12)
        ),
    }
}

/// One to three secrets a line, each in a context logs carry them in.
fn provider_lines() -> Vec<String> {
    let mut r = Rng(0x5EC2_E7D3_A5E1);
    let prefixes = [
        "2024-05-01T10:00:00.123Z INFO [worker-3] com.example.Auth:",
        "May  1 10:00:00 host app[1234]:",
        "level=warn ts=2024-05-01T10:00:00Z caller=client.go:42",
        "E0501 10:00:00.123456 1 client.go:42]",
    ];
    (0..20_000)
        .map(|i| {
            let mut line = prefixes[i % prefixes.len()].to_string();
            for _ in 0..1 + r.below(3) {
                let s = provider_secret(&mut r);
                let part = match r.below(12) {
                    0 => format!(" using {s} for upload"),
                    1 => format!(" {{\"msg\":\"auth ok\",\"value\":\"{s}\"}}"),
                    2 => format!(" Authorization: Bearer {s}"),
                    3 => format!(" GET /api/v1/items?access_token={s}&page=2"),
                    4 => format!(" export GH_TOKEN={s}"),
                    5 => format!(" token: {s}"),
                    6 => format!(" password={}", r.chars(AN, 14)),
                    7 => format!(" postgres://app:{}@db.internal:5432/app", r.chars(AN, 12)),
                    8 => format!(" {{\"api_key\":\"{}\"}}", r.chars(AN, 32)),
                    9 => format!(" deploy --token {s}"),
                    10 => format!(" cred={s};"),
                    _ => format!(" rejected '{s}'"),
                };
                line.push_str(&part);
            }
            line
        })
        .collect()
}

/// `LOGSHIP_REDACT_DUMP=<dir>`: the set as a file, one line each.
fn dump(name: &str, lines: &[String]) {
    let Some(dir) = std::env::var_os("LOGSHIP_REDACT_DUMP") else {
        return;
    };
    let mut text = lines.join("\n");
    text.push('\n');
    let path = Path::new(&dir).join(format!("{name}.log"));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

fn bench_set(c: &mut Criterion, name: &str, lines: &[String]) {
    dump(name, lines);
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
    bench_set(c, "dense_providers", &provider_lines());
}

criterion_group!(redact, benches);
criterion_main!(redact);
