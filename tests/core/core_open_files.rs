//! More files than descriptors (issue #16): 400 files under a hard
//! `RLIMIT_NOFILE` of 256, written to again and again, some rotated by
//! rename and some by copytruncate. The agent stays up, keeps its file
//! handles under the cap it derives from the limit (closing and reopening
//! by identity), and every line arrives exactly once.
//!
//! Before the bound, the agent held one descriptor per followed file and
//! exited with `Too many open files` at its first checkpoint.

use std::fs;
use std::time::Duration;

use crate::support::agent::{append, assert_exactly_once, numbered, Agent};

const DIRS: usize = 20;
const PER_DIR: usize = 20;
const LIMIT: u64 = 256;
/// `source::fds::budget_for(256)`: the limit less a quarter.
const CAP: f64 = 192.0;

#[test]
fn four_hundred_files_under_a_hard_limit_of_256_every_line_once() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*/*.log\", \"{logs}/*/*.log.*\"]\n",
    );
    let files: Vec<_> = (0..DIRS)
        .flat_map(|d| (0..PER_DIR).map(move |f| (d, f)))
        .map(|(d, f)| {
            a.logs()
                .join(format!("d{d:02}"))
                .join(format!("f{f:02}.log"))
        })
        .collect();
    for d in 0..DIRS {
        fs::create_dir_all(a.logs().join(format!("d{d:02}"))).unwrap();
    }
    let mut expected = Vec::new();
    // Files with content before the start: restored handles, then new ones.
    for (i, p) in files.iter().enumerate() {
        let lines = numbered(&format!("f{i} r0"), 0..5);
        append(p, &lines);
        expected.extend(lines);
    }
    a.enable_metrics();
    a.nofile_limit(LIMIT);
    a.start();
    a.wait_ready();
    let mut peak_open = 0.0f64;
    for round in 1..=6 {
        for (i, p) in files.iter().enumerate() {
            // Rotations on some files, once each: by rename (the new file
            // created at once, as logrotate `create`) in round 2, by
            // copytruncate in round 4.
            if round == 2 && i % 10 == 0 {
                fs::rename(p, p.with_extension("log.1")).unwrap();
                fs::File::create(p).unwrap();
            }
            if round == 4 && i % 10 == 5 {
                fs::copy(p, p.with_extension("log.1")).unwrap();
                fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
            let lines = numbered(&format!("f{i} r{round}"), 0..5);
            append(p, &lines);
            expected.extend(lines);
        }
        assert!(a.alive(), "agent exited in round {round}:\n{}", a.stderr());
        peak_open = peak_open.max(a.metric("logship_open_files"));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Half of the copytruncated files' lines were written before the copy:
    // read before, or recognised in the copy; never both.
    a.wait_stored(expected.len());
    assert!(a.alive(), "{}", a.stderr());
    peak_open = peak_open.max(a.metric("logship_open_files"));
    let closed = a.metric("logship_files_closed_total{reason=\"limit\"}");
    let reopened = a.metric("logship_files_reopened_total");
    let fds = a.open_fds();
    assert!(a.term().success(), "{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), &expected);
    assert!(
        peak_open <= CAP,
        "open handles {peak_open} over the cap {CAP}"
    );
    assert!(
        closed > 0.0 && reopened > 0.0,
        "the cap was never reached: {closed} closed, {reopened} reopened"
    );
    assert!((fds as u64) < LIMIT, "{fds} descriptors open at the end");
    assert!(
        !a.stderr().contains("Too many open files"),
        "{}",
        a.stderr()
    );
}

/// Out of descriptors at restore, adoption, reopen and in the scan's
/// directory listings (every third open fails with EMFILE, simulated:
/// `LOGSHIP_TEST_EMFILE_EVERY`): files rotated by rename and copytruncate
/// while the agent was down, and written since, are neither retired nor
/// read again from the start — each attempt is retried — and every line
/// arrives exactly once.
#[test]
fn out_of_descriptors_at_restore_retries_and_reads_nothing_twice() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\", \"{logs}/*.log.*\"]\n",
    );
    let files: Vec<_> = (0..60)
        .map(|i| a.logs().join(format!("f{i:02}.log")))
        .collect();
    let mut expected = Vec::new();
    for (i, p) in files.iter().enumerate() {
        let lines = numbered(&format!("f{i} before"), 0..20);
        append(p, &lines);
        expected.extend(lines);
    }
    a.start();
    a.wait_local(expected.len());
    assert!(a.term().success(), "{}", a.stderr());
    // While it is down: rotations of both kinds, and more lines everywhere.
    for (i, p) in files.iter().enumerate() {
        match i % 3 {
            0 => {
                fs::rename(p, p.with_extension("log.1")).unwrap();
            }
            1 => {
                fs::copy(p, p.with_extension("log.1")).unwrap();
                fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
            _ => {}
        }
        let lines = numbered(&format!("f{i} after"), 0..20);
        append(p, &lines);
        expected.extend(lines);
    }
    a.env("LOGSHIP_TEST_EMFILE_EVERY", "3");
    a.start();
    a.wait_stored(expected.len());
    // More lines while it runs: reopened after closes, still failing often.
    for (i, p) in files.iter().enumerate() {
        let lines = numbered(&format!("f{i} running"), 0..5);
        append(p, &lines);
        expected.extend(lines);
    }
    a.wait_stored(expected.len());
    assert!(a.term().success(), "{}", a.stderr());
    let mut events = a.bucket_events();
    events.extend(a.local_events());
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    assert_exactly_once(&events, &expected);
    assert!(
        a.stderr().contains("out of file descriptors"),
        "the simulated EMFILE was never hit:\n{}",
        a.stderr()
    );
}
