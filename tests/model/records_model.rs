//! Model-based test of records across restarts (issue 10), beside the
//! tailer model: the real [`Tailer`], the real record steps
//! ([`records::Files`]) and the real checkpoint encoding, driven by random
//! writes, polls, waits, commits, graceful restarts and crashes.
//!
//! The application writes records — single lines, Java traces, Python
//! tracebacks, CRI-wrapped traces on `stdout` and `stderr` whose lines
//! interleave — a few whole lines at a time, so a poll or a crash often
//! falls inside a record. The model is the list of records written. A
//! crash forgets every event emitted since the last commit and restarts
//! from the last checkpoint (as `kill -9` does: segments are cut back to
//! their committed length); a restart commits first.
//!
//! The verdict: the committed events are exactly the records written, each
//! once and whole — no split, no merge, no loss, no duplicate — and no
//! event mixes the two streams. Pauses inside a record stay below the
//! multiline timeout (a longer one would complete the record by design).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use logship::config::SourceConfig;
use logship::event::Event;
use logship::normalize::Normalizer;
use logship::pipeline::checkpoint;
use logship::pipeline::records::{Files, RecordSpec, Shared};
use logship::redact::{RedactionConfig, Redactor};
use logship::source::file::FileState;
use logship::source::tailer::{Retired, TailPolicy, Tailer};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    /// Append this many of the next lines.
    Write(usize),
    /// Read every file, then let this many ms pass (below the timeout).
    Poll(u64),
    /// Let the timeout pass, then complete what waited (only between
    /// records; inside one it is a short pause).
    Idle,
    Commit,
    /// Commit, stop, start from the checkpoint.
    Restart,
    /// Stop without committing (`kill -9`), start from the checkpoint.
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1usize..12).prop_map(Action::Write),
        3 => (0u64..400).prop_map(Action::Poll),
        1 => Just(Action::Idle),
        2 => Just(Action::Commit),
        1 => Just(Action::Restart),
        2 => Just(Action::Crash),
    ]
}

/// A record: its lines as written, and the event `msg` it must become.
#[derive(Clone, Debug)]
struct Record {
    lines: Vec<String>,
    msg: String,
    stream: Option<&'static str>,
}

fn record(n: usize, shape: u8, frames: usize) -> Record {
    let ts = format!("2026-11-22T03:49:{:02}.{:03}Z", n % 60, n % 1000);
    let (lines, stream): (Vec<String>, _) = match shape % 4 {
        0 => (vec![format!("{ts} INFO r{n} ok")], None),
        1 => {
            let mut l = vec![
                format!("{ts} ERROR r{n} failed"),
                format!("java.lang.IllegalStateException: r{n}"),
            ];
            l.extend((0..frames).map(|j| format!("\tat a.R{n}.f{j}(R.java:{j})")));
            (l, None)
        }
        2 => {
            let mut l = vec![
                format!("{ts} ERROR r{n} job"),
                "Traceback (most recent call last):".into(),
            ];
            l.extend((0..frames).map(|j| format!("  File \"r{n}.py\", line {j}, in f")));
            l.push(format!("KeyError: 'r{n}'"));
            (l, None)
        }
        _ => {
            let s = if n.is_multiple_of(2) {
                "stdout"
            } else {
                "stderr"
            };
            let mut l = vec![format!("{ts} ERROR r{n} in pod")];
            l.extend((0..frames).map(|j| format!("\tat p.R{n}.f{j}(P.java:{j})")));
            (
                l.into_iter().map(|x| format!("{ts} {s} F {x}")).collect(),
                Some(s),
            )
        }
    };
    let msg = lines
        .iter()
        .map(|l| {
            l.split_once(" F ")
                .filter(|_| stream.is_some())
                .map_or(l.as_str(), |(_, m)| m)
        })
        .collect::<Vec<_>>()
        .join("\n");
    Record { lines, msg, stream }
}

/// The file's lines in write order: records in order, except that a CRI
/// record's lines interleave with those of the CRI record of the other
/// stream written around it. Also returns, per line, whether every record
/// is complete after it (a safe point for a long pause).
fn layout(records: &[Record], mix: &[bool]) -> (Vec<String>, Vec<bool>) {
    let mut out = Vec::new();
    let mut boundary = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let pair = records[i].stream.is_some()
            && records
                .get(i + 1)
                .is_some_and(|r| r.stream.is_some() && r.stream != records[i].stream)
            && mix.get(i).copied().unwrap_or(false);
        if pair {
            let (a, b) = (&records[i].lines, &records[i + 1].lines);
            let (mut x, mut y) = (0, 0);
            // Both first lines before any continuation, then alternate.
            while x < a.len() || y < b.len() {
                if x < a.len() && (x <= y || y >= b.len()) {
                    out.push(a[x].clone());
                    x += 1;
                } else {
                    out.push(b[y].clone());
                    y += 1;
                }
                boundary.push(false);
            }
            i += 2;
        } else {
            for l in &records[i].lines {
                out.push(l.clone());
                boundary.push(false);
            }
            i += 1;
        }
        if let Some(b) = boundary.last_mut() {
            *b = true;
        }
    }
    (out, boundary)
}

struct Agent {
    sources: Vec<SourceConfig>,
    normalizers: Vec<Normalizer>,
    specs: Vec<RecordSpec>,
    redactor: Redactor,
    tailer: Option<Tailer>,
    files: Files,
    checkpoint: (Vec<FileState>, Vec<Retired>),
    /// The last committed checkpoint.
    saved: Option<(Vec<FileState>, Vec<Retired>)>,
    seq: u64,
    now: Instant,
    buf: Vec<u8>,
    /// Events since the last commit (lost by a crash).
    pending: Vec<Event>,
    committed: Vec<Event>,
}

const TIMEOUT_MS: u64 = 1000;

impl Agent {
    fn new(dir: &Path) -> Agent {
        let text = format!(
            "name = \"app\"\ninclude = [\"{}/app.log\"]\n[multiline]\nmode = \"auto\"\ntimeout = \"{TIMEOUT_MS}ms\"\n",
            dir.display()
        );
        let sources: Vec<SourceConfig> = vec![toml::from_str(&text).expect("source config")];
        Agent {
            normalizers: sources
                .iter()
                .map(|s| Normalizer::new(s, "model"))
                .collect(),
            specs: sources.iter().map(RecordSpec::new).collect(),
            redactor: Redactor::new(&RedactionConfig::default()).unwrap(),
            tailer: None,
            files: Files::default(),
            checkpoint: (Vec::new(), Vec::new()),
            saved: None,
            seq: 0,
            now: Instant::now(),
            buf: Vec::new(),
            pending: Vec::new(),
            committed: Vec::new(),
            sources,
        }
    }

    fn tailer(&mut self) -> &mut Tailer {
        if self.tailer.is_none() {
            let (files, retired) = std::mem::take(&mut self.checkpoint);
            let mut t =
                Tailer::new(&self.sources, files, retired, false, TailPolicy::default()).unwrap();
            t.scan();
            self.tailer = Some(t);
        }
        self.tailer.as_mut().unwrap()
    }

    fn read(&mut self) {
        self.tailer();
        let Agent {
            normalizers,
            specs,
            redactor,
            tailer,
            files,
            seq,
            now,
            buf,
            pending,
            ..
        } = self;
        let t = tailer.as_mut().unwrap();
        t.scan();
        let mut sh = Shared {
            normalizers,
            specs,
            redactor,
            next_seq: seq,
            now: *now,
            wall_ms: 0,
        };
        for key in t.keys() {
            while t
                .read_file(key, buf, *now, usize::MAX, &mut |f, line| {
                    files.push(f, line, &mut sh, &mut |ev| pending.push(ev.clone()))
                })
                .unwrap()
                > 0
            {}
        }
    }

    fn tick(&mut self) {
        self.tailer();
        let Agent {
            normalizers,
            specs,
            redactor,
            tailer,
            files,
            seq,
            now,
            pending,
            ..
        } = self;
        let mut sh = Shared {
            normalizers,
            specs,
            redactor,
            next_seq: seq,
            now: *now,
            wall_ms: 0,
        };
        files.tick(tailer.as_mut().unwrap(), false, &mut sh, &mut |ev| {
            pending.push(ev.clone())
        });
    }

    /// Commit as the pipeline does: states patched to the oldest unfinished
    /// record, through the on-disk encoding.
    fn commit(&mut self) {
        let (mut files, retired) = self.tailer().states();
        self.files.patch(&mut files);
        let cp = checkpoint::Checkpoint {
            files,
            retired,
            ..checkpoint::Checkpoint::new("model")
        };
        let mut disk = Vec::new();
        checkpoint::encode(&cp, &mut disk).unwrap();
        let cp = checkpoint::decode(&disk).unwrap();
        self.saved = Some((cp.files, cp.retired));
        self.committed.append(&mut self.pending);
    }

    fn stop(&mut self, crash: bool) {
        if !crash {
            self.commit();
        }
        self.pending.clear();
        self.tailer = None;
        self.files = Files::default();
        self.checkpoint = self.saved.clone().unwrap_or_default();
    }
}

fn run(records: Vec<Record>, mix: Vec<bool>, actions: Vec<Action>) {
    let dir = tempfile::tempdir().unwrap();
    let (lines, boundary) = layout(&records, &mix);
    let path = dir.path().join("app.log");
    fs::write(&path, "").unwrap();
    let mut a = Agent::new(dir.path());
    a.tailer();
    a.commit();
    let mut written = 0;
    let write = |n: usize, written: &mut usize| {
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let end = (*written + n).min(lines.len());
        for l in &lines[*written..end] {
            f.write_all(format!("{l}\n").as_bytes()).unwrap();
        }
        *written = end;
    };
    // Time passed since the last write: inside a record it stays below
    // the timeout.
    let mut quiet = 0;
    for act in actions {
        match act {
            Action::Write(n) => {
                write(n, &mut written);
                quiet = 0;
            }
            Action::Poll(ms) => {
                a.read();
                let safe = written == 0 || boundary[written - 1];
                let ms = if safe {
                    ms
                } else {
                    ms.min((TIMEOUT_MS - 100).saturating_sub(quiet))
                };
                quiet += ms;
                a.now += Duration::from_millis(ms);
                a.tick();
            }
            Action::Idle => {
                a.read();
                let safe = written == 0 || boundary[written - 1];
                let ms = if safe { TIMEOUT_MS + 1 } else { 0 };
                quiet += ms;
                a.now += Duration::from_millis(ms);
                a.tick();
            }
            Action::Commit => a.commit(),
            Action::Restart => a.stop(false),
            Action::Crash => a.stop(true),
        }
    }
    // Everything written, read, completed by the timeout, committed.
    write(lines.len(), &mut written);
    a.read();
    a.now += Duration::from_millis(TIMEOUT_MS + 1);
    a.tick();
    a.commit();

    let got: Vec<(&str, &str)> = a
        .committed
        .iter()
        .map(|e| (e.msg.as_str(), e.src.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.msg.as_str(), r.stream.unwrap_or("app")))
        .collect();
    let mut g = got.clone();
    let mut w = want.clone();
    g.sort();
    w.sort();
    assert_eq!(g, w, "records differ (split, merged, lost or repeated)");
    // No event mixes streams: CRI markers of the other stream never appear.
    assert!(a
        .committed
        .iter()
        .all(|e| !e.msg.contains(" stdout F ") && !e.msg.contains(" stderr F ")));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn records_survive_restarts_and_crashes(
        shapes in prop::collection::vec((0u8..4, 0usize..8), 1..30),
        mix in prop::collection::vec(any::<bool>(), 30),
        actions in prop::collection::vec(action(), 1..60),
    ) {
        let records = shapes.iter().enumerate().map(|(n, &(s, f))| record(n, s, f)).collect();
        run(records, mix, actions);
    }
}
