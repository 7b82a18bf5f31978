//! Read-side helpers: a multi-day corpus of events written straight into a
//! bucket as the agent would (gzip objects with metadata, local segment
//! files), an independent ground-truth filter, the `logship query` binary,
//! and a plain-TCP Server-Sent Events client.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use logship::event::{Event, Level, Tier};
use logship::ship::{Bucket, ObjectMeta};

use super::agent::{parse_lines, BIN};

pub const DAY: i64 = 86_400_000;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Today's UTC midnight (ms).
pub fn today() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(DAY)
}

fn ymd(ms: i64) -> (i64, u32, u32) {
    logship::normalize::time::civil_from_days(ms.div_euclid(DAY))
}

/// One stored unit: an object key (or local path) and its events in write order.
pub struct Unit {
    pub key: String,
    pub events: Vec<Event>,
    /// Also present as a local segment file (relative to data_dir).
    pub local: Option<String>,
    /// Only local (not uploaded).
    pub local_only: bool,
}

/// Events over the last `days` days: several instances, system, build and
/// action tiers; segments whose `ts` is not in write order; a backlog
/// object filed days after its events; uploaded segments still present
/// locally (duplicates), and an open local-only segment.
pub struct Corpus {
    pub units: Vec<Unit>,
}

/// A small deterministic PRNG (xorshift), so failures reproduce.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub const TEMPLATES: [&str; 4] = [
    "build {hex} failed after {num}ms",
    "connection to 10.0.0.{small} refused",
    "user {num} not found",
    "disk {small} almost full",
];

fn template_msg(rng: &mut Rng, t: &str) -> String {
    t.replace("{hex}", &format!("{:010x}", rng.next() & 0xff_ffff_ffff))
        .replace("{num}", &format!("{}", 1000 + rng.below(90_000)))
        .replace("{small}", &format!("{}", rng.below(9)))
}

impl Corpus {
    pub fn generate(days: i64, per_segment: usize) -> Corpus {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let t0 = today();
        let now = t0 + (now_ms() - t0).max(600_000);
        let mut units = Vec::new();
        let mut seqs = [0u64; 3];
        let lvls = [Level::Debug, Level::Info, Level::Warn, Level::Error];
        let mut ulid = 0u64;
        let mk = |rng: &mut Rng, inst: usize, tier: Tier, ts: i64, seqs: &mut [u64; 3]| {
            let mut e = Event::empty(tier);
            e.ts = ts;
            e.instance_id = format!("h{inst}");
            e.kind = if rng.below(10) == 0 {
                "meta".into()
            } else {
                "line".into()
            };
            e.lvl = lvls[rng.below(4) as usize];
            e.src = if rng.below(2) == 0 {
                "app".into()
            } else {
                "worker".into()
            };
            e.seq = seqs[inst];
            seqs[inst] += 1;
            e.user_id = (rng.below(5) == 0).then(|| format!("u{}", rng.below(3)));
            e.req_id = (rng.below(7) == 0).then(|| format!("r{}", rng.below(4)));
            e.msg = if e.lvl == Level::Error {
                let t = TEMPLATES[rng.below(4) as usize];
                template_msg(rng, t)
            } else if rng.below(500) == 0 {
                format!("RARE needle {}", e.seq)
            } else {
                format!("event {} of h{inst}", e.seq)
            };
            e
        };
        for day in (0..days).rev() {
            let d0 = t0 - day * DAY;
            let (y, m, d) = ymd(d0);
            for inst in 0..3 {
                for seg in 0..3 {
                    ulid += 1;
                    // A segment spans a third of the day (of today: of what
                    // has passed); ts jitters up to a minute backwards
                    // (write order is not ts order).
                    let span = (DAY.min(now - 120_000 - d0) / 3).max(3_000);
                    let start = d0 + seg * span;
                    let mut events = Vec::new();
                    for i in 0..per_segment {
                        let base = start + (i as i64) * (span / per_segment as i64);
                        let jitter = rng.below(60_000) as i64;
                        events.push(mk(
                            &mut rng,
                            inst,
                            Tier::System,
                            (base - jitter).max(start - 60_000),
                            &mut seqs,
                        ));
                    }
                    let name = format!("h{inst}-{ulid:026}");
                    let key = format!("system/{y:04}/{m:02}/{d:02}/{name}.ndjson.gz");
                    // The newest two days are still on disk as well.
                    let local =
                        (day <= 1).then(|| format!("system/{y:04}-{m:02}-{d:02}/{name}.ndjson"));
                    units.push(Unit {
                        key,
                        events,
                        local,
                        local_only: false,
                    });
                }
            }
            // Action tier under two projects.
            for (p, inst) in [("p1", 0usize), ("p2", 1)] {
                ulid += 1;
                let events = (0..per_segment / 4)
                    .map(|i| {
                        let mut e = mk(
                            &mut rng,
                            inst,
                            Tier::Action,
                            d0 + 3_600_000 + i as i64 * 1000,
                            &mut seqs,
                        );
                        e.project_id = Some(p.into());
                        e
                    })
                    .collect();
                let key = format!("projects/{p}/{y:04}/{m:02}/{d:02}/h{inst}-{ulid:026}.ndjson.gz");
                units.push(Unit {
                    key,
                    events,
                    local: None,
                    local_only: false,
                });
            }
        }
        // A backlog: events of three days ago, read and filed today.
        let (y, m, d) = ymd(t0);
        ulid += 1;
        let events = (0..per_segment)
            .map(|i| {
                mk(
                    &mut rng,
                    2,
                    Tier::System,
                    t0 - 3 * DAY + 5_000 + i as i64 * 7,
                    &mut seqs,
                )
            })
            .collect();
        units.push(Unit {
            key: format!("system/{y:04}/{m:02}/{d:02}/h2-{ulid:026}.ndjson.gz"),
            events,
            local: None,
            local_only: false,
        });
        // An open local segment, not uploaded yet.
        ulid += 1;
        let now_ish = now - 60_000;
        let events = (0..per_segment)
            .map(|i| mk(&mut rng, 0, Tier::System, now_ish + i as i64, &mut seqs))
            .collect();
        units.push(Unit {
            key: String::new(),
            events,
            local: Some(format!("system/{y:04}-{m:02}-{d:02}/h0-{ulid:026}.ndjson")),
            local_only: true,
        });
        // Builds: one object each, spanning days, ids b1..b5.
        for b in 1..=5 {
            let start = now - (b as i64 % 3) * DAY - 4 * 3_600_000;
            let events = (0..per_segment / 2)
                .map(|i| {
                    let mut e = mk(
                        &mut rng,
                        b % 3,
                        Tier::Build,
                        start + i as i64 * 60_000,
                        &mut seqs,
                    );
                    e.build_id = Some(format!("b{b}"));
                    e
                })
                .collect();
            units.push(Unit {
                key: format!("builds/b{b}.ndjson.gz"),
                events,
                local: None,
                local_only: false,
            });
        }
        Corpus { units }
    }

    /// Every event once.
    pub fn events(&self) -> Vec<Event> {
        self.units
            .iter()
            .flat_map(|u| u.events.iter().cloned())
            .collect()
    }

    /// Write the objects into `bucket` and local segments under `data_dir`.
    pub async fn store(&self, bucket: &Arc<dyn Bucket>, data_dir: &Path) {
        for u in &self.units {
            let mut raw = Vec::new();
            for e in &u.events {
                e.write_json(&mut raw);
            }
            if let Some(rel) = &u.local {
                let p = data_dir.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, &raw).unwrap();
            }
            if u.local_only {
                continue;
            }
            let meta = ObjectMeta {
                first_ts: u.events.iter().map(|e| e.ts).min().unwrap_or(0),
                last_ts: u.events.iter().map(|e| e.ts).max().unwrap_or(0),
                lines: u.events.len() as u64,
                tier: u.events[0].tier.as_str().into(),
                instance_id: u.events[0].instance_id.clone(),
            };
            bucket.put(&u.key, gzip(&raw), &meta).await.expect("put");
        }
    }
}

pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

/// A query as the tests express it, with the CLI flags it maps to.
#[derive(Clone, Debug, Default)]
pub struct Q {
    pub tier: &'static str,
    pub since: i64,
    pub until: Option<i64>,
    pub kind: Option<&'static str>,
    pub lvl: Option<Level>,
    pub src: Option<&'static str>,
    pub instance_id: Option<&'static str>,
    pub project_id: Option<&'static str>,
    pub build_id: Option<&'static str>,
    pub user_id: Option<&'static str>,
    pub req_id: Option<&'static str>,
    pub grep: Option<&'static str>,
    pub limit: Option<usize>,
}

impl Q {
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--tier".into(),
            self.tier.into(),
            "--since".into(),
            self.since.to_string(),
        ];
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v);
            }
        };
        opt("--until", self.until.map(|u| u.to_string()));
        opt("--kind", self.kind.map(Into::into));
        opt("--lvl", self.lvl.map(|l| l.as_str().into()));
        opt("--src", self.src.map(Into::into));
        opt("--instance-id", self.instance_id.map(Into::into));
        opt("--project-id", self.project_id.map(Into::into));
        opt("--build-id", self.build_id.map(Into::into));
        opt("--user-id", self.user_id.map(Into::into));
        opt("--req-id", self.req_id.map(Into::into));
        opt("--grep", self.grep.map(Into::into));
        opt("--limit", self.limit.map(|l| l.to_string()));
        a
    }

    /// The same as `/api/query` parameters.
    pub fn params(&self) -> String {
        let mut p = vec![
            format!("tier={}", self.tier),
            format!("since={}", self.since),
        ];
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                p.push(format!("{k}={}", v.replace(' ', "%20").replace('+', "%2B")));
            }
        };
        opt("until", self.until.map(|u| u.to_string()));
        opt("kind", self.kind.map(Into::into));
        opt("lvl", self.lvl.map(|l| l.as_str().into()));
        opt("src", self.src.map(Into::into));
        opt("instanceId", self.instance_id.map(Into::into));
        opt("projectId", self.project_id.map(Into::into));
        opt("buildId", self.build_id.map(Into::into));
        opt("userId", self.user_id.map(Into::into));
        opt("reqId", self.req_id.map(Into::into));
        opt("grep", self.grep.map(Into::into));
        opt("limit", self.limit.map(|l| l.to_string()));
        p.join("&")
    }

    /// Ground truth, computed independently of the engine: filter, order
    /// by `(ts, instanceId, seq)`, de-duplicate, cut at `limit`.
    pub fn expect(&self, all: &[Event]) -> Vec<Event> {
        let until = self.until.unwrap_or(i64::MAX);
        let eq = |w: Option<&str>, h: Option<&str>| w.is_none() || w == h;
        let mut v: Vec<Event> = all
            .iter()
            .filter(|e| {
                e.tier.as_str() == self.tier
                    && e.ts >= self.since
                    && e.ts < until
                    && self.lvl.is_none_or(|l| e.lvl >= l)
                    && eq(self.kind, Some(&e.kind))
                    && eq(self.src, Some(&e.src))
                    && eq(self.instance_id, Some(&e.instance_id))
                    && eq(self.project_id, e.project_id.as_deref())
                    && eq(self.build_id, e.build_id.as_deref())
                    && eq(self.user_id, e.user_id.as_deref())
                    && eq(self.req_id, e.req_id.as_deref())
                    && self.grep.is_none_or(|g| e.msg.contains(g))
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.ts, &a.instance_id, a.seq).cmp(&(b.ts, &b.instance_id, b.seq)));
        let mut seen = BTreeSet::new();
        v.retain(|e| seen.insert((e.instance_id.clone(), e.seq)));
        if let Some(l) = self.limit {
            v.truncate(l);
        }
        v
    }
}

/// Run `logship query -c config ARGS`; stdout parsed, stderr returned.
pub fn query(config: &Path, args: &[String]) -> (Vec<Event>, String) {
    let out = Command::new(BIN)
        .args(["query", "-c"])
        .arg(config)
        .args(args)
        .output()
        .expect("running logship query");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "query {args:?} failed: {stderr}");
    (parse_lines(&out.stdout), stderr)
}

/// Compare two event lists order-for-order, with a readable failure.
pub fn assert_same(what: &str, got: &[Event], want: &[Event]) {
    let key = |e: &Event| (e.ts, e.instance_id.clone(), e.seq);
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} events, want {}; first difference at {:?}: got {:?} want {:?}",
            got.len(),
            want.len(),
            first,
            first.and_then(|i| got.get(i)).map(key),
            first.and_then(|i| want.get(i)).map(key),
        );
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET; (status, headers, body) — the body read to EOF.
pub fn http_get(
    addr: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// An SSE client over a raw TCP connection.
pub struct Sse {
    pub status: u16,
    reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

/// One SSE event: `id:` and `data:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub data: String,
}

impl Sse {
    /// Connect and send the request; reads the status line and headers.
    pub fn connect(addr: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Sse {
        let stream = TcpStream::connect(addr).expect("connect");
        let mut w = stream.try_clone().unwrap();
        let mut req = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        w.write_all(req.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        Sse {
            status,
            reader,
            stream,
        }
    }

    /// The next event (skipping comments and heartbeats); `None` at EOF or
    /// on the read timeout. Chunked framing is stripped: chunk-size lines
    /// are hex-only lines, which no SSE field line is.
    pub fn next(&mut self) -> Option<SseEvent> {
        let (mut id, mut data) = (None, None);
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = Some(v.to_string());
            } else if l.is_empty() {
                if let Some(d) = data.take() {
                    return Some(SseEvent { id, data: d });
                }
            }
        }
    }
}

/// The events of SSE `data:` lines.
pub fn sse_events(evs: &[SseEvent]) -> Vec<Event> {
    evs.iter()
        .map(|e| Event::from_json(&e.data).expect("data is an event"))
        .collect()
}

/// Read all of `r` (helper for gz bodies).
pub fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}
