//! SPEC §9 through `logship normalize` (the agent's own record path): each
//! fixture in `tests/fixtures/formats/` becomes the records a person
//! reading it would count, with the level and time they would read.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use logship::event::{Event, Level};

use crate::support::agent::{parse_lines, BIN};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(name)
}

/// `logship normalize` over a fixture with extra flags.
fn normalize(name: &str, flags: &[&str]) -> Vec<Event> {
    let out = Command::new(BIN)
        .args(["normalize", "--tier", "system"])
        .args(flags)
        .stdin(std::fs::File::open(fixture(name)).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run logship normalize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_lines(&out.stdout)
}

/// One expected record: level, number of lines, how its first line starts.
type Want = (Level, usize, &'static str);

fn check(file: &str, name: &str, events: &[Event], want: &[Want]) {
    let got: Vec<(Level, usize, String)> = events
        .iter()
        .map(|e| {
            (
                e.lvl,
                e.msg.split('\n').count(),
                e.msg.chars().take(40).collect(),
            )
        })
        .collect();
    assert_eq!(events.len(), want.len(), "{name}: {got:#?}");
    for (i, (e, (lvl, lines, head))) in events.iter().zip(want).enumerate() {
        assert_eq!(e.lvl, *lvl, "{name} record {i}: {}", e.msg);
        assert_eq!(
            e.msg.split('\n').count(),
            *lines,
            "{name} record {i}: {}",
            e.msg
        );
        assert!(e.msg.starts_with(head), "{name} record {i}: {}", e.msg);
    }
    // Every line of the file is in exactly one record (blank lines aside).
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let joined: usize = events
        .iter()
        .map(|e| e.msg.lines().filter(|l| !l.trim().is_empty()).count())
        .sum();
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(joined, lines, "{name}: lines lost or repeated");
}

/// 2026-11-22T03:49:44Z, the fixtures' first second.
const T0: i64 = 1_795_319_384_000;

#[test]
fn stack_traces_of_each_language_are_one_record() {
    use Level::*;
    let cases: [(&str, &str, &[Want]); 7] = [
        (
            "java.log",
            "java",
            &[
                (Info, 1, "2026-11-22 03:49:44.101 INFO"),
                (Error, 20, "2026-11-22 03:49:44.118 ERROR"),
                (Warn, 1, "2026-11-22 03:49:44.240 WARN"),
                (Error, 4, "Exception in thread \"scheduler-2\""),
                (Info, 1, "2026-11-22 03:49:45.002 INFO"),
            ],
        ),
        (
            "python.log",
            "python",
            &[
                (Info, 1, "2026-11-22 03:49:44,101 INFO"),
                (Error, 17, "2026-11-22 03:49:44,230 ERROR"),
                (Warn, 1, "2026-11-22 03:49:44,300 WARNING"),
                (Error, 14, "2026-11-22 03:49:44,350 CRITICAL"),
                (Info, 1, "2026-11-22 03:49:45,000 INFO"),
            ],
        ),
        (
            "go.log",
            "go",
            &[
                (Info, 1, "2026/11/22 03:49:44 listening"),
                (Info, 1, "2026/11/22 03:49:44 GET"),
                (Error, 19, "panic: runtime error"),
                (Info, 1, "2026/11/22 03:49:46 listening"),
            ],
        ),
        (
            "node.log",
            "node",
            &[
                (Info, 1, "2026-11-22T03:49:44.101Z info"),
                (Error, 10, "2026-11-22T03:49:44.230Z error"),
                (Warn, 1, "2026-11-22T03:49:44.300Z warn"),
            ],
        ),
        (
            "ruby.log",
            "ruby",
            &[
                (Info, 1, "I, [2026-11-22T03:49:44.101000"),
                (Error, 5, "E, [2026-11-22T03:49:44.230000"),
                (Warn, 1, "W, [2026-11-22T03:49:44.300000"),
            ],
        ),
        (
            "php.log",
            "php",
            &[
                (Warn, 1, "[22-Nov-2026 03:49:44 UTC] PHP Warning"),
                (Error, 11, "[22-Nov-2026 03:49:44 UTC] PHP Fatal"),
                (Error, 4, "[2026-11-22 03:49:45] production.ERROR"),
                (Info, 1, "[22-Nov-2026 03:49:46 UTC] PHP Notice"),
            ],
        ),
        (
            "dotnet.log",
            "dotnet",
            &[
                (Info, 1, "2026-11-22 03:49:44.101 +00:00 [INF]"),
                (Error, 9, "2026-11-22 03:49:44.230 +00:00 [ERR]"),
                (Warn, 1, "2026-11-22 03:49:44.300 +00:00 [WRN]"),
                (Error, 4, "Unhandled exception. System.IO"),
            ],
        ),
    ];
    for (file, mode, want) in cases {
        let preset = normalize(file, &["--multiline", mode]);
        check(file, file, &preset, want);
        // `auto` knows every one of these shapes.
        let auto = normalize(file, &["--multiline", "auto"]);
        check(file, &format!("{file} (auto)"), &auto, want);
        // The first line gives `ts`.
        assert!(
            (T0..T0 + 2000).contains(&preset[1].ts),
            "{file}: ts {}",
            preset[1].ts
        );
    }
    // Java's chain stays whole: `Caused by:` twice, `Suppressed:`, `... N more`.
    let java = normalize("java.log", &["--multiline", "java"]);
    assert_eq!(java[1].msg.matches("Caused by: ").count(), 2);
    assert!(java[1].msg.contains("\tSuppressed: ") && java[1].msg.contains("\t... 12 more"));
    assert_eq!(java[1].ts, T0 + 118);
    let py = normalize("python.log", &["--multiline", "python"]);
    assert!(py[1]
        .msg
        .contains("\n\nDuring handling of the above exception"));
    assert!(py[1].msg.ends_with("RuntimeError: cannot report job 4411"));
}

#[test]
fn container_lines_are_unwrapped_joined_and_kept_apart_by_stream() {
    let evs = normalize("cri.log", &["--format", "cri", "--multiline", "java"]);
    let got: Vec<(&str, Level, usize)> = evs
        .iter()
        .map(|e| (e.src.as_str(), e.lvl, e.msg.split('\n').count()))
        .collect();
    assert_eq!(
        got,
        [
            ("stdout", Level::Info, 1),
            ("stderr", Level::Error, 6),
            ("stdout", Level::Error, 1), // 503 from the access line inside
            ("stdout", Level::Info, 1),
            ("stderr", Level::Warn, 1),
            ("stdout", Level::Info, 1),
        ]
    );
    // The stderr trace holds no stdout line, and the P/P/F JSON is one object.
    assert!(!evs[1].msg.contains("GET /"));
    assert_eq!(evs[3].msg, "batch done");
    assert_eq!(evs[3].data.as_ref().unwrap()["took_ms"], 812);
    assert_eq!(
        evs[5].ts,
        T0 + 1100,
        "the runtime's time for a line without one"
    );
    let data = evs[2].data.as_ref().unwrap();
    assert_eq!(
        (data["status"].as_u64(), data["path"].as_str()),
        (Some(503), Some("/readyz"))
    );

    let evs = normalize("docker.log", &["--format", "docker", "--multiline", "java"]);
    let got: Vec<(&str, usize)> = evs
        .iter()
        .map(|e| (e.src.as_str(), e.msg.split('\n').count()))
        .collect();
    assert_eq!(
        got,
        [("stdout", 1), ("stderr", 3), ("stdout", 1), ("stderr", 1)]
    );
    assert_eq!(
        evs[2].msg,
        "part one of a long stdout line, part two, \"quoted\", and the end"
    );
    assert_eq!(evs[2].ts, T0 + 231);
    // `auto` recognises container lines per line too.
    let auto = normalize("docker.log", &["--multiline", "auto"]);
    assert_eq!(
        auto.iter().map(|e| &e.msg).collect::<Vec<_>>(),
        evs.iter().map(|e| &e.msg).collect::<Vec<_>>()
    );
}

#[test]
fn syslog_access_and_klog_lines() {
    use Level::*;
    for flags in [&["--format", "syslog"][..], &[]] {
        let evs = normalize("syslog.log", flags);
        let lv: Vec<Level> = evs.iter().map(|e| e.lvl).collect();
        assert_eq!(
            lv,
            [Error, Info, Info, Info, Info, Warn, Debug],
            "{flags:?}"
        );
        let d = evs[0].data.as_ref().unwrap();
        assert_eq!(
            (d["host"].as_str(), d["app"].as_str(), d["pid"].as_u64()),
            (Some("web-1"), Some("sshd"), Some(2211))
        );
        assert!(evs[0].msg.starts_with("Failed password"));
        assert_eq!(evs[4].ts, T0 + 1003);
        assert_eq!(evs[4].data.as_ref().unwrap()["msgid"], "ID47");
        assert_eq!(evs[6].msg, "cache warmed");
    }
    for flags in [&["--format", "combined"][..], &[]] {
        let evs = normalize("access.log", flags);
        let lv: Vec<Level> = evs.iter().map(|e| e.lvl).collect();
        assert_eq!(lv, [Info, Info, Warn, Error, Info], "{flags:?}");
        let d = evs[3].data.as_ref().unwrap();
        assert_eq!(
            (
                d["method"].as_str(),
                d["status"].as_u64(),
                d["bytes"].as_u64()
            ),
            (Some("GET"), Some(502), Some(157))
        );
        assert_eq!(d["agent"], "okhttp/4.12.0");
        assert_eq!(evs[4].ts, T0 + 2000, "+0100 zone");
    }
    for flags in [&["--format", "klog"][..], &[]] {
        let evs = normalize("klog.log", flags);
        let lv: Vec<Level> = evs.iter().map(|e| e.lvl).collect();
        assert_eq!(lv, [Info, Warn, Error, Info, Error], "{flags:?}");
        assert_eq!(evs[0].ts, T0 + 101);
        assert_eq!(evs[2].data.as_ref().unwrap()["source"], "controller.go:114");
        assert!(evs[4].msg.starts_with("unable to load"));
    }
}

#[test]
fn unknown_format_or_mode_is_refused() {
    for flags in [
        &["--format", "xml"][..],
        &["--multiline", "cobol"],
        &["--multiline", "custom"],
    ] {
        let out = Command::new(BIN)
            .args(["normalize", "--tier", "system"])
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("use one of") || err.contains("needs `start`"),
            "{flags:?}: {err}"
        );
    }
}
