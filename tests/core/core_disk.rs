//! A data_dir that takes no writes is waited out, not crashed on: with
//! data_dir on a 16 MiB tmpfs mounted by the test, the disk filled up by a
//! ballast file mid-run, or the filesystem read-only at start (after a
//! `kill -9` left uncommitted bytes in segments), the agent stays up, stops
//! reading, says so in `/metrics` and `/readyz`, resumes by itself when
//! writes succeed again, and every line is shipped exactly once. And
//! `segments.max_disk` keeps a backlog larger than the filesystem from
//! filling it.
//!
//! Mounting needs root (CAP_SYS_ADMIN); where it is refused the tests print
//! why and return.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use logship::event::Event;

use crate::support::agent::{assert_exactly_once, dir_bucket_objects, numbered, Agent, Writer};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "remount {mode} failed");
    }

    /// Bytes in use on the filesystem.
    fn used(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=used", "-B1"])
            .arg(&self.dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the agent may still be exiting.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// An agent with data_dir on a fresh 16 MiB tmpfs and its dir bucket
/// outside it (the bucket is the store, not local disk), metrics on.
fn agent_on_tmpfs(segments: &str) -> Option<(Agent, Tmpfs)> {
    let a = Agent::with(
        &format!("max_bytes = \"256KiB\"\n{segments}"),
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n\n[bucket]\nkind = \"dir\"\npath = \"{logs}/../bucket\"\n",
    );
    let fs = Tmpfs::mount(&a.data(), "16m")?;
    a.enable_metrics();
    Some((a, fs))
}

/// The agent's bucket sits outside its (small) data dir here.
fn bucket_events(a: &Agent) -> Vec<Event> {
    dir_bucket_objects(&a.dir.path().join("bucket"))
        .into_values()
        .flatten()
        .collect()
}

/// Fill the filesystem of `path` to the last byte (a write fails).
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let block = vec![b'x'; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let mut small = vec![b'x'; 512];
    while !small.is_empty() {
        if f.write_all(&small).is_err() {
            small.truncate(small.len() / 2);
        }
    }
}

fn blocked(a: &mut Agent, reason: &str) -> f64 {
    a.metric(&format!("logship_data_dir_blocked{{reason=\"{reason}\"}}"))
}

/// Stop the writer, let the agent ship everything, stop it, and check
/// that the bucket holds every line once.
fn finish(a: &mut Agent, w: Writer) -> Vec<String> {
    let written = w.stop();
    let n = written.len();
    a.wait_until(
        &format!("{n} lines in segments"),
        Duration::from_secs(120),
        |a| {
            std::thread::sleep(Duration::from_millis(200));
            let mut seen: Vec<(String, u64)> = a
                .local_events()
                .into_iter()
                .chain(bucket_events(a))
                .map(|e| (e.instance_id, e.seq))
                .collect();
            seen.sort();
            seen.dedup();
            seen.len() >= n
        },
    );
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&bucket_events(a), &written);
    written
}

#[test]
fn a_full_data_dir_pauses_reading_and_resumes_with_every_line_once() {
    let Some((mut a, tmpfs)) = agent_on_tmpfs("") else {
        return;
    };
    a.start();
    a.wait_ready();
    let w = Writer::spawn(
        a.logs().join("app.log"),
        "full",
        20,
        Duration::from_millis(10),
    );
    a.wait_local(2000);
    let ballast = a.data().join("ballast");
    fill(&ballast);
    a.wait_until("the full disk in metrics", Duration::from_secs(30), |a| {
        blocked(a, "no_space") == 1.0
    });
    let (code, body) = a.http_get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no space"), "{body}");
    assert!(a.alive(), "the agent exited:\n{}", a.stderr());
    assert!(a.metric("logship_data_dir_pauses_total{reason=\"no_space\"}") >= 1.0);
    // The writer goes on meanwhile; the source file is the buffer.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(a.alive(), "the agent exited:\n{}", a.stderr());
    assert_eq!(blocked(&mut a, "no_space"), 1.0, "no space yet");
    fs::remove_file(&ballast).unwrap();
    a.wait_until("resumed", Duration::from_secs(30), |a| {
        blocked(a, "no_space") == 0.0
    });
    a.wait_ready();
    let rolled_back = a.stderr().contains("rolled back to the last checkpoint");
    eprintln!(
        "write failed mid-run and was rolled back: {rolled_back}; tmpfs used now {} bytes",
        tmpfs.used()
    );
    finish(&mut a, w);
}

#[test]
fn a_read_only_data_dir_at_start_waits_and_resumes_with_every_line_once() {
    let Some((mut a, tmpfs)) = agent_on_tmpfs("") else {
        return;
    };
    a.start();
    a.wait_ready();
    let w = Writer::spawn(
        a.logs().join("app.log"),
        "ro",
        20,
        Duration::from_millis(10),
    );
    a.wait_local(2000);
    // Killed while writing: segments may end in uncommitted bytes, which
    // must be cut before anything is appended.
    a.kill9();
    tmpfs.remount("ro");
    a.start();
    a.wait_until(
        "the read-only disk in metrics",
        Duration::from_secs(30),
        |a| blocked(a, "read_only") == 1.0,
    );
    let (code, body) = a.http_get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("read-only"), "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(a.alive(), "the agent exited:\n{}", a.stderr());
    tmpfs.remount("rw");
    a.wait_until("resumed", Duration::from_secs(30), |a| {
        blocked(a, "read_only") == 0.0
    });
    a.wait_ready();
    finish(&mut a, w);
}

#[test]
fn max_disk_keeps_a_backlog_larger_than_the_filesystem_from_filling_it() {
    let Some((mut a, tmpfs)) = agent_on_tmpfs("max_disk = \"6MiB\"") else {
        return;
    };
    // About 21 MiB of lines, 25 MiB as events: more than the filesystem.
    // (Few long lines: the exactly-once check is quadratic.)
    let lines = numbered("backlog", 0..30_000);
    let padded: Vec<String> = lines
        .iter()
        .map(|l| format!("{l} {}", "p".repeat(680)))
        .collect();
    crate::support::agent::append(&a.logs().join("app.log"), &padded);
    a.start();
    let mut peak = 0;
    let n = padded.len() as f64;
    a.wait_until("the backlog read", Duration::from_secs(300), |a| {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(tmpfs.used());
        !a.alive() || a.metric("logship_events_written_total{tier=\"system\"}") >= n
    });
    assert!(a.alive(), "the agent exited:\n{}", a.stderr());
    eprintln!("peak tmpfs use while catching up: {peak} bytes (max_disk 6 MiB, filesystem 16 MiB)");
    assert_eq!(
        a.metric("logship_data_dir_pauses_total{reason=\"no_space\"}"),
        0.0,
        "the disk filled up; stderr:\n{}",
        a.stderr()
    );
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&bucket_events(&a), &padded);
}
