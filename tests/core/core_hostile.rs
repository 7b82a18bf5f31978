//! Hostile log content (SPEC rules): bounded memory, counted, and the agent
//! keeps running and keeps every other line.

use crate::support;

use std::fs;
use std::io::Write;
use std::time::Duration;

use support::agent::{append, Agent};

#[test]
fn huge_line_without_newline_is_cut_with_bounded_memory() {
    let mut a = Agent::simple("");
    a.enable_metrics();
    let log = a.logs().join("app.log");
    append(&log, &["before".to_string()]);
    a.start();
    a.wait_local(1);
    let baseline = a.peak_rss_kib();
    // 200 MB without a newline, written in pieces while the agent tails.
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let chunk = vec![b'x'; 4 << 20];
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\nafter\n").unwrap();
    drop(f);
    a.wait_local(3);
    let peak = a.peak_rss_kib();
    assert!(a.alive());
    assert_eq!(a.metric("logship_truncated_lines_total"), 1.0);
    let st = a.term();
    assert!(st.success());
    let evs = a.bucket_events();
    let msgs: Vec<&str> = evs.iter().map(|e| e.msg.as_str()).collect();
    assert_eq!(
        msgs.len(),
        3,
        "lines: {:?}",
        msgs.iter().map(|m| m.len()).collect::<Vec<_>>()
    );
    assert_eq!(msgs[0], "before");
    assert!(msgs[1].ends_with("[TRUNCATED]") && msgs[1].len() <= 256 * 1024 + 11);
    assert_eq!(msgs[2], "after");
    // Memory is bounded by a read chunk, not by the line: far below 200 MB.
    assert!(
        peak < 100 * 1024,
        "peak RSS {peak} KiB (baseline {baseline} KiB) for a 200 MB line"
    );
}

#[test]
fn invalid_utf8_and_deep_json_are_kept_as_text() {
    let mut a = Agent::simple("");
    a.enable_metrics();
    let log = a.logs().join("app.log");
    let mut content = b"bad \xff\xfe bytes\n".to_vec();
    content.extend(format!("{{\"a\":{}\n", "[".repeat(10_000)).into_bytes());
    content.extend(b"normal line\n");
    fs::write(&log, content).unwrap();
    a.start();
    a.wait_local(3);
    assert!(a.alive());
    assert_eq!(a.metric("logship_invalid_utf8_lines_total"), 1.0);
    a.term();
    let evs = a.bucket_events();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0].msg, "bad \u{fffd}\u{fffd} bytes");
    assert!(evs[1].msg.starts_with("{\"a\":[[[[") && evs[1].data.is_none());
    assert_eq!(evs[2].msg, "normal line");
}

#[test]
fn path_traversal_build_id_never_reaches_a_path() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"builds\"\ninclude = [\"{logs}/*.log\"]\ntier = \"build\"",
    );
    a.enable_metrics();
    fs::write(
        a.logs().join("b.log"),
        "{\"msg\":\"evil\",\"buildId\":\"../../etc/passwd\"}\n{\"msg\":\"fine\",\"buildId\":\"b-1\"}\n{\"msg\":\"none\"}\n",
    )
    .unwrap();
    a.start();
    a.wait_local(3);
    assert_eq!(a.metric("logship_invalid_ids_total"), 1.0);
    a.term();
    let keys: Vec<String> = a.bucket_objects().keys().cloned().collect();
    assert!(
        keys.contains(&"builds/b-1.ndjson.gz".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"builds/_none.ndjson.gz".to_string()),
        "{keys:?}"
    );
    let evil: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("builds/_invalid-"))
        .collect();
    assert_eq!(evil.len(), 1, "{keys:?}");
    // The event keeps its real id; only the path is made safe.
    let evs = &a.bucket_objects()[evil[0]];
    assert_eq!(evs[0].build_id.as_deref(), Some("../../etc/passwd"));
    for f in support::agent::files_under(a.dir.path()) {
        assert!(f.starts_with(a.dir.path()), "{f:?} escaped the test dir");
        assert!(!f.to_string_lossy().contains("passwd"), "{f:?}");
    }
}

#[test]
fn symlink_loops_do_not_hang_the_agent() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/**/*.log\"]",
    );
    let logs = a.logs();
    std::os::unix::fs::symlink(&logs, logs.join("loop")).unwrap();
    std::os::unix::fs::symlink(logs.join("self.log"), logs.join("self.log")).unwrap();
    fs::create_dir_all(logs.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", logs.join("sub/up")).unwrap();
    append(&logs.join("sub/real.log"), &["real line".to_string()]);
    a.start();
    a.wait_local(1);
    std::thread::sleep(Duration::from_millis(500));
    append(&logs.join("sub/real.log"), &["second line".to_string()]);
    a.wait_local(2);
    assert!(a.alive());
    a.term();
    let msgs: Vec<String> = a.bucket_events().into_iter().map(|e| e.msg).collect();
    assert_eq!(msgs, vec!["real line", "second line"]);
}
