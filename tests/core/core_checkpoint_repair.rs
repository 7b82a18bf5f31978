//! A checkpoint corrupted on disk: the agent falls back to the previous
//! one by itself, exactly once; with both unusable it stops with an error
//! naming the file and pointing at `logship checkpoint repair` (not "move
//! it away", which would read everything again), and the repaired
//! checkpoint resumes every file after the records already stored — also
//! where records span lines (multiline, container partial lines).

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::support::agent::{append, assert_exactly_once, numbered, Agent, Writer, BIN};

fn cut_in_half(path: &std::path::Path) {
    let raw = fs::read(path).unwrap();
    fs::write(path, &raw[..raw.len() / 2]).unwrap();
}

#[test]
fn a_torn_checkpoint_falls_back_to_the_previous_one_with_every_line_once() {
    let mut a = Agent::with(
        "max_bytes = \"64KiB\"",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    a.start();
    let w = Writer::spawn(
        a.logs().join("app.log"),
        "torn",
        20,
        Duration::from_millis(5),
    );
    a.wait_local(3000);
    a.kill9();
    let state = a.data().join("state");
    assert!(
        state.join("checkpoint.prev.json").exists(),
        "no previous checkpoint kept"
    );
    cut_in_half(&state.join("checkpoint.json"));
    a.start();
    let written = w.stop();
    a.wait_stored(written.len());
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert!(
        a.stderr().contains("resuming from the previous one"),
        "{}",
        a.stderr()
    );
    assert!(state.join("checkpoint.json.corrupt").exists());
    assert_exactly_once(&a.bucket_events(), &written);
}

#[test]
fn both_checkpoints_unusable_stop_the_agent_and_repair_resumes_after_what_is_stored() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n",
    );
    let (app, other) = (a.logs().join("app.log"), a.logs().join("other.log"));
    let first = [numbered("app", 0..400), numbered("other", 0..300)];
    append(&app, &first[0]);
    append(&other, &first[1]);
    a.start();
    a.wait_local(700);
    // Killed: some of what is in the segments was never committed.
    a.kill9();
    // Written while the agent is down: not stored anywhere yet.
    let later = [numbered("app", 400..650), numbered("other", 300..420)];
    append(&app, &later[0]);
    append(&other, &later[1]);
    let state = a.data().join("state");
    cut_in_half(&state.join("checkpoint.json"));
    fs::write(state.join("checkpoint.prev.json"), b"{\"version\":2,").unwrap();
    a.start();
    a.wait_until(
        "the agent to refuse to start",
        Duration::from_secs(30),
        |a| !a.alive(),
    );
    let st = a.child.take().map(|mut c| c.wait().unwrap());
    assert!(!st.unwrap().success());
    let err = a.stderr();
    assert!(
        err.contains("checkpoint.json") && err.contains("checkpoint.prev.json"),
        "{err}"
    );
    assert!(err.contains("logship checkpoint repair"), "{err}");
    assert!(!err.contains("move it away"), "{err}");

    let out = Command::new(BIN)
        .args(["checkpoint", "repair", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (f, lines) in [("app.log", 400), ("other.log", 300)] {
        assert!(
            report.contains(&format!("{f}: resumes at byte"))
                && report.contains(&format!(": {lines} lines taken as read ({lines} records)")),
            "{report}"
        );
    }
    a.start();
    let all: Vec<String> = [&first[0], &first[1], &later[0], &later[1]]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    a.wait_stored(all.len());
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    assert_exactly_once(&a.bucket_events(), &all);
}

/// `YYYY-MM-DDTHH:MM:SS.mmm` (UTC) of now plus `n` ms. Lines carry current
/// times: the repair looks for stored events from a day before the files
/// were created on.
fn now_plus(n: usize) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + n as i64;
    let (y, m, d) = logship::normalize::time::civil_from_days(ms.div_euclid(86_400_000));
    let t = ms.rem_euclid(86_400_000);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t % 1000
    )
}

/// Java record `n`: a single line, or an error with its stack trace.
fn java_record(n: usize) -> Vec<String> {
    let ts = now_plus(n).replace('T', " ");
    if n % 3 == 1 {
        return vec![format!("{ts} INFO  [main] c.e.App - java rec {n} ok")];
    }
    vec![
        format!("{ts} ERROR [main] c.e.App - java rec {n} failed"),
        format!("java.lang.IllegalStateException: rec {n}"),
        format!("\tat com.example.App.handle(App.java:{n})"),
        "\tat com.example.App.main(App.java:7)".to_string(),
        format!("Caused by: java.io.IOException: rec {n}"),
        "\t... 2 more".to_string(),
    ]
}

/// CRI lines of pod record `n` and the messages of its events: partial
/// lines joined, stdout and stderr interleaved.
fn pod_record(n: usize) -> (Vec<String>, Vec<String>) {
    let ts = format!("{}{n:06}Z", now_plus(n));
    match n % 3 {
        0 => (
            vec![
                format!("{ts} stdout P pod rec {n} first "),
                format!("{ts} stderr F pod rec {n} on stderr"),
                format!("{ts} stdout F half"),
            ],
            vec![
                format!("pod rec {n} first half"),
                format!("pod rec {n} on stderr"),
            ],
        ),
        1 => (
            vec![format!("{ts} stdout F pod rec {n} whole")],
            vec![format!("pod rec {n} whole")],
        ),
        _ => (
            vec![
                format!("{ts} stderr P pod rec {n} a-"),
                format!("{ts} stderr P b-"),
                format!("{ts} stderr F c"),
            ],
            vec![format!("pod rec {n} a-b-c")],
        ),
    }
}

/// A private key logged over CRI lines `range` (0: BEGIN, 1..=4: body,
/// 5: END): each line becomes a `[REDACTED:pem_private_key]` event.
fn pod_key(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            let text = match i {
                0 => "-----BEGIN RSA PRIVATE KEY-----".to_string(),
                5 => "-----END RSA PRIVATE KEY-----".to_string(),
                _ => format!("MIIEowIBAAKCAQEAvSECRETSECRETSECRETSECRET{i}"),
            };
            format!("{}Z stdout F {text}", now_plus(i))
        })
        .collect()
}

struct Batch {
    java: Vec<String>,
    pod: Vec<String>,
    /// Messages of the events the lines above make (the key's excepted).
    msgs: Vec<String>,
}

fn batch(records: std::ops::Range<usize>) -> Batch {
    let mut b = Batch {
        java: Vec::new(),
        pod: Vec::new(),
        msgs: Vec::new(),
    };
    for n in records {
        let j = java_record(n);
        b.msgs.push(j.join("\n"));
        b.java.extend(j);
        let (lines, msgs) = pod_record(n);
        b.pod.extend(lines);
        b.msgs.extend(msgs);
    }
    b
}

fn bytes(lines: &[String]) -> u64 {
    lines.iter().map(|l| l.len() as u64 + 1).sum()
}

/// The agent is killed with a Java stack-trace source (its last record
/// still open) and a CRI source (partial lines, both streams, a private
/// key spanning the kill) stored up to there, more is written while it is
/// down, and both checkpoints are lost. `checkpoint repair` groups each
/// file's lines as the agent does, so each file resumes at the first
/// record not stored — the open Java record, the pod file inside the key
/// block — and after a restart and more lines every record is in the
/// bucket exactly once, whole, and no key material. With one line matched
/// to one event both files are read again from the start (93 duplicates).
#[test]
fn repair_resumes_multiline_and_cri_sources_at_the_first_record_not_stored() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"java\"\ninclude = [\"{logs}/java.log\"]\n\
         [sources.multiline]\nmode = \"java\"\ntimeout = \"1h\"\n\n\
         [[sources]]\nname = \"pods\"\ninclude = [\"{logs}/pod.log\"]\nformat = \"cri\"\n",
    );
    let (java, pod) = (a.logs().join("java.log"), a.logs().join("pod.log"));
    let mut first = batch(0..40);
    first.pod.extend(pod_key(0..3));
    append(&java, &first.java);
    append(&pod, &first.pod);
    let pod_events = first.msgs.len() - 40 + 3;
    a.start();
    // Every pod event stored, and every Java record but the last: no line
    // has come after it and its `timeout` is an hour, so it is still open
    // when the agent is killed.
    a.wait_until("the first lines stored", Duration::from_secs(60), |a| {
        let ev = a.local_events();
        let java = ev.iter().filter(|e| e.src == "java").count();
        java == 39 && ev.len() - java >= pod_events
    });
    a.kill9();
    // Written while the agent is down: not stored anywhere yet. The pod
    // file goes on inside the key block.
    let mut later = batch(40..60);
    later.pod.splice(0..0, pod_key(3..6));
    append(&java, &later.java);
    append(&pod, &later.pod);
    let state = a.data().join("state");
    cut_in_half(&state.join("checkpoint.json"));
    fs::write(state.join("checkpoint.prev.json"), b"{\"version\":2,").unwrap();

    let out = Command::new(BIN)
        .args(["checkpoint", "repair", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod_line = format!(
        "pod.log: resumes at byte {} of {}: {} lines taken as read ({pod_events} records)",
        bytes(&first.pod),
        bytes(&first.pod) + bytes(&later.pod),
        first.pod.len()
    );
    assert!(report.contains(&pod_line), "{pod_line:?} in\n{report}");
    // The Java file resumes at the record that was open: read again, whole,
    // with the lines written to it since.
    let java_line = format!(
        "java.log: resumes at byte {} of {}: {} lines taken as read (39 records)",
        bytes(&batch(0..39).java),
        bytes(&first.java) + bytes(&later.java),
        batch(0..39).java.len()
    );
    assert!(report.contains(&java_line), "{java_line:?} in\n{report}");

    a.start();
    let last = batch(60..80);
    append(&java, &last.java);
    append(&pod, &last.pod);
    // Completes the last Java record; stays open itself (not expected).
    append(&java, &java_record(80));
    let expected: Vec<String> = [first.msgs, later.msgs, last.msgs].concat();
    a.wait_stored(expected.len() + 6);
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    let events = a.bucket_events();
    let (key, rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| e.msg == "[REDACTED:pem_private_key]");
    assert_exactly_once(&rest, &expected);
    // Six key lines, each once; none of the key in clear.
    assert_eq!(key.len(), 6, "{key:#?}");
    assert!(
        rest.iter().all(|e| !e.msg.contains("SECRET")),
        "key material shipped"
    );
}

/// Two pods' files of one CRI source log the same text; only the runtime's
/// timestamps tell their lines apart. Lines of pod a written while the
/// agent is down have the text of pod b's stored events, which come later
/// in `seq`: matched by message alone they would be taken as read and lost
/// (20 of 25 stored); matched with the runtime's time they are read.
#[test]
fn repair_does_not_take_a_container_line_for_another_files_line_of_the_same_text() {
    let mut a = Agent::with(
        "",
        "[[sources]]\nname = \"pods\"\ninclude = [\"{logs}/*.log\"]\nformat = \"cri\"\n",
    );
    let (pa, pb) = (a.logs().join("a.log"), a.logs().join("b.log"));
    let health = |r: std::ops::Range<usize>| -> Vec<String> {
        r.map(|n| format!("{}Z stdout F GET /health 200", now_plus(n)))
            .collect()
    };
    let a_first = health(0..10);
    append(&pa, &a_first);
    a.start();
    a.wait_local(10);
    // b's events come after all of a's.
    append(&pb, &health(100..110));
    a.wait_local(20);
    a.kill9();
    append(&pa, &health(200..205));
    let state = a.data().join("state");
    cut_in_half(&state.join("checkpoint.json"));
    fs::write(state.join("checkpoint.prev.json"), b"{\"version\":2,").unwrap();
    let out = Command::new(BIN)
        .args(["checkpoint", "repair", "-c"])
        .arg(&a.config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    let a_line = format!(
        "a.log: resumes at byte {} of {}: 10 lines taken as read (10 records)",
        bytes(&a_first),
        bytes(&a_first) + bytes(&health(200..205))
    );
    assert!(report.contains(&a_line), "{a_line:?} in\n{report}");
    a.start();
    a.wait_stored(25);
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
    let events = a.bucket_events();
    assert!(events.iter().all(|e| e.msg == "GET /health 200"));
    let mut ts: Vec<i64> = events.iter().map(|e| e.ts).collect();
    ts.sort_unstable();
    ts.dedup();
    // Each line once: 25 events, 25 distinct runtime times.
    assert_eq!((events.len(), ts.len()), (25, 25));
}
