//! Multi-line records through the agent binary (SPEC §9, §4): whole across
//! `kill -9`, bounded and counted on hostile input.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::support::agent::{assert_exactly_once, Agent};

const SOURCE: &str = "format = \"auto\"\n[sources.multiline]\nmode = \"auto\"\ntimeout = \"2s\"\n";

/// Record `n` of a realistic mix: single lines, Java chains, Python
/// tracebacks, CRI-wrapped traces on stderr. Every line names `n`, so a
/// merge of two records or a split of one shows in the comparison.
fn record(n: usize, rng: &mut impl Rng) -> Vec<String> {
    let ts = format!(
        "2026-11-22T03:{:02}:{:02}.{:03}Z",
        n / 3600 % 60,
        n / 60 % 60,
        n % 1000
    );
    let frames = rng.random_range(1..25);
    match rng.random_range(0..4) {
        0 => vec![format!("{ts} INFO rec {n} served")],
        1 => {
            let mut r = vec![
                format!("{ts} ERROR rec {n} request failed"),
                format!("java.lang.IllegalStateException: rec {n}"),
            ];
            r.extend((0..frames).map(|j| format!("\tat com.acme.R{n}.m{j}(R.java:{j})")));
            r.push(format!("Caused by: java.io.IOException: rec {n}"));
            r.push(format!("\t... {frames} more"));
            r
        }
        2 => {
            let mut r = vec![
                format!("{ts} ERROR rec {n} job failed"),
                "Traceback (most recent call last):".into(),
            ];
            for j in 0..frames {
                r.push(format!("  File \"/app/r{n}.py\", line {j}, in f"));
                r.push(format!("    call_{n}_{j}()"));
            }
            r.push(format!("ValueError: rec {n}"));
            r
        }
        _ => {
            let mut r = vec![format!("{ts} stderr F {ts} ERROR rec {n} in a pod")];
            r.extend(
                (0..frames).map(|j| format!("{ts} stderr F \tat com.acme.P{n}.m{j}(P.java:{j})")),
            );
            r
        }
    }
}

/// What the event of a record holds: its lines joined, CRI unwrapped.
fn expected_msg(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| match l.split_once(" stderr F ") {
            Some((_, inner)) => inner,
            None => l.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A writer appends records line by line, pausing inside records, while
/// the agent is killed at random moments — often with a trace half
/// written. Every record must come out once, whole: no splits, merges,
/// losses or duplicates.
#[test]
fn kill_9_while_traces_are_half_written() {
    let mut a = Agent::simple(SOURCE);
    let log = a.logs().join("app.log");
    let seed = std::env::var("LOGSHIP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill -9 schedule seed: {seed}");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            let mut records = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = record(n, &mut rng);
                for (i, l) in r.iter().enumerate() {
                    f.write_all(format!("{l}\n").as_bytes()).unwrap();
                    // Pauses inside records (well below the 2s timeout), so
                    // kills land in the middle of traces.
                    if i % 7 == 3 {
                        std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
                    }
                }
                records.push(expected_msg(&r));
                n += 1;
            }
            records
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    a.start();
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(rng.random_range(80..500)));
        a.kill9();
        a.start();
    }
    stop.store(true, Ordering::Relaxed);
    let records = writer.join().unwrap();
    assert!(records.len() > 50, "only {} records written", records.len());
    // The last record is complete after the timeout.
    a.wait_local(records.len());
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());
    let events = a.local_events();
    // Name what went wrong, if anything: a split is an event holding part
    // of a record, a merge one holding lines of two records.
    let id_of = |line: &str| {
        line.split("rec ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .map(str::to_string)
    };
    let expected: std::collections::HashSet<&str> = records.iter().map(String::as_str).collect();
    let (mut splits, mut merges) = (0, 0);
    for e in events.iter().filter(|e| !expected.contains(e.msg.as_str())) {
        let ids: std::collections::HashSet<String> = e.msg.lines().filter_map(id_of).collect();
        if ids.len() > 1 {
            merges += 1;
        } else {
            splits += 1;
        }
    }
    assert_eq!((splits, merges), (0, 0), "records split or merged");
    assert_exactly_once(&events, &records);
    let errors = events.iter().filter(|e| e.msg.contains('\n')).count();
    assert!(
        errors > 0
            && events
                .iter()
                .filter(|e| e.msg.contains('\n'))
                .all(|e| e.lvl == logship::event::Level::Error)
    );
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut f = std::io::BufWriter::new(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    );
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.flush().unwrap();
}

/// A 10,000-line "stack trace", a CRI stream of nothing but `P` pieces, a
/// record that never ends, and two writers interleaving their traces in
/// one file: memory stays bounded, records are cut and counted, and the
/// agent keeps running and reading.
#[test]
fn hostile_records_are_cut_counted_and_bounded() {
    let mut a = Agent::simple(SOURCE);
    a.enable_metrics();
    let logs = a.logs();
    a.start();
    a.wait_ready();

    // 1. A 10,000-line trace, then an ordinary line.
    let huge = logs.join("huge.log");
    write_lines(
        &huge,
        std::iter::once("2026-11-22T03:49:44Z ERROR huge trace".to_string())
            .chain((0..10_000).map(|i| format!("\tat com.acme.Deep.f{i}(Deep.java:{i})")))
            .chain(std::iter::once(
                "2026-11-22T03:49:45Z INFO after huge".to_string(),
            )),
    );
    // 2. CRI partial pieces only (8 MiB without an `F`), then real lines.
    let pods = logs.join("pods.log");
    let piece = format!("2026-11-22T03:49:44Z stdout P {}", "p".repeat(8 * 1024));
    write_lines(&pods, std::iter::repeat_n(piece, 1024));
    write_lines(
        &pods,
        [
            "2026-11-22T03:49:46Z stdout F end of the endless line",
            "2026-11-22T03:49:46Z stdout F after partials",
        ]
        .map(String::from)
        .into_iter(),
    );
    // 3. A record that never ends: continuation lines keep coming.
    let endless = logs.join("endless.log");
    write_lines(
        &endless,
        std::iter::once("2026-11-22T03:49:44Z ERROR endless".to_string()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, endless) = (stop.clone(), endless.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                write_lines(
                    &endless,
                    (i..i + 5_000).map(|j| format!("    at endless.f{j} (e.js:{j})")),
                );
                i += 5_000;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // 4. Two writers interleaving whole lines of their traces in one file.
    let mixed = logs.join("mixed.log");
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let mixed = mixed.clone();
            std::thread::spawn(move || {
                for r in 0..200 {
                    let mut lines = vec![format!("2026-11-22T03:49:44Z ERROR w{w} r{r}")];
                    lines.extend((0..5).map(|j| format!("\tat w{w}.r{r}.f{j}(W.java:{j})")));
                    write_lines(&mixed, lines.into_iter());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }

    fn mixed_lines(evs: &[logship::event::Event]) -> Vec<&str> {
        evs.iter()
            .filter(|e| e.msg.contains(" w0") || e.msg.contains(" w1") || e.msg.contains("\tat w"))
            .flat_map(|e| e.msg.split('\n'))
            .collect()
    }
    a.wait_until("hostile records", Duration::from_secs(60), |a| {
        let evs = a.local_events();
        ["after huge", "after partials", "ERROR endless"]
            .iter()
            .all(|m| evs.iter().any(|e| e.msg.contains(m)))
            && mixed_lines(&evs).len() >= 2 * 200 * 6
    });
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let evs = a.local_events();
    let by = |needle: &str| {
        evs.iter()
            .filter(|e| e.msg.contains(needle))
            .collect::<Vec<_>>()
    };
    let huge_ev = by("ERROR huge trace");
    assert_eq!(huge_ev.len(), 1);
    assert_eq!(huge_ev[0].msg.lines().count(), 500, "cut at max_lines");
    assert!(huge_ev[0].msg.ends_with("[TRUNCATED]"));
    let pieces = by("ppppp");
    assert_eq!(pieces.len(), 1, "one cut line out of 8 MiB of pieces");
    assert!(pieces[0].msg.ends_with("[TRUNCATED]") && pieces[0].msg.len() <= 256 * 1024 + 11);
    assert!(
        by("end of the endless line").is_empty(),
        "the rest of a cut line is dropped"
    );
    let endless_ev = by("ERROR endless");
    assert_eq!(endless_ev.len(), 1);
    assert!(endless_ev[0].msg.ends_with("[TRUNCATED]"));
    // Interleaved writers: every line is somewhere, exactly once.
    let mixed_lines = mixed_lines(&evs);
    assert_eq!(mixed_lines.len(), 2 * 200 * 6);
    let unique: std::collections::HashSet<&str> = mixed_lines.iter().copied().collect();
    assert_eq!(unique.len(), mixed_lines.len());

    assert!(a.alive(), "agent died:\n{}", a.stderr());
    assert!(a.metric("logship_records_cut_total{reason=\"max_lines\"}") >= 2.0);
    assert!(a.metric("logship_records_cut_total{reason=\"partial_line\"}") >= 1.0);
    assert!(a.metric("logship_record_lines_dropped_total") >= 9_500.0);
    // Bounded: 8 MiB of pieces and 10,000 frames never held at once.
    let rss = a.peak_rss_kib();
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB");
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());
}
