//! The agent's own log output: no escape sequences when stderr is not a
//! terminal (journald, `kubectl logs`), colour on a terminal unless
//! `NO_COLOR`, and one JSON object per line with `--log-format json` or
//! `LOGSHIP_LOG_FORMAT=json`.

use std::fs;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::agent::{signal, Agent, BIN};

const READY: &str = "sources watched; agent ready";

/// Start the agent with its stderr in a file and `env` set; wait until it
/// says it is ready, stop it with SIGTERM, and return what it logged.
fn logged_to_file(extra_args: &[&str], env: &[(&str, &str)]) -> String {
    let a = Agent::simple("");
    let err = fs::File::create(a.stderr_path()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c"]).arg(&a.config).args(extra_args);
    cmd.env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOGSHIP_LOG_FORMAT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn logship");
    wait_for(&mut child, || a.stderr().contains(READY), || a.stderr());
    signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "agent exit {status}:\n{}", a.stderr());
    a.stderr()
}

/// Poll `done` until true; fail with `what()` if the child exits or a minute
/// passes first.
fn wait_for(child: &mut Child, done: impl Fn() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("agent exited early ({st}):\n{}", what());
        }
        assert!(
            Instant::now() < deadline,
            "agent never got ready:\n{}",
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn text_logs_to_a_file_carry_no_escape_sequences() {
    let log = logged_to_file(&[], &[]);
    assert!(log.contains("logship starting"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape sequences in a non-terminal log:\n{log:?}"
    );
}

#[test]
fn json_format_from_the_environment_is_one_object_per_line() {
    let log = logged_to_file(&[], &[("LOGSHIP_LOG_FORMAT", "json")]);
    check_json_lines(&log);
}

#[test]
fn json_format_from_the_flag_wins_over_the_environment() {
    let log = logged_to_file(&["--log-format", "json"], &[("LOGSHIP_LOG_FORMAT", "text")]);
    check_json_lines(&log);
}

fn check_json_lines(log: &str) {
    assert!(!log.contains('\x1b'), "{log:?}");
    let mut starting = false;
    let mut lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(v["level"].is_string(), "{line}");
        if v["fields"]["message"] == "logship starting" {
            starting = true;
            assert_eq!(v["fields"]["instance_id"], "test-host", "{line}");
        }
        lines += 1;
    }
    assert!(
        starting,
        "no 'logship starting' object among {lines} lines:\n{log}"
    );
}

#[test]
fn an_unknown_format_is_refused_at_start_with_its_name() {
    let a = Agent::simple("");
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&a.config)
        .env("LOGSHIP_LOG_FORMAT", "xml")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"LOGSHIP_LOG_FORMAT: unknown log format "xml"; use "text" or "json""#),
        "{err}"
    );
}

/// Run the agent on a pseudo-terminal (util-linux `script`), wait until it
/// is ready, stop it, and return what the terminal showed.
fn logged_to_terminal(no_color: Option<&str>) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!(
            "skipped: util-linux `script` is not installed (no pseudo-terminal to test colour on)"
        );
        return None;
    }
    let a = Agent::simple("");
    let inner = format!("exec {BIN} run -c {}", a.config.display());
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"]);
    cmd.env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOGSHIP_LOG_FORMAT");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    // The agent logs "agent ready" with colour codes between the words'
    // fields, so look for the message text alone.
    wait_for(&mut child, || text().contains("agent ready"), text);
    // `exec` made the agent the process `script` runs on the terminal.
    let agent_pid = fs::read_to_string(format!("/proc/{}/task/{0}/children", child.id()))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the agent under script");
    signal(agent_pid, libc::SIGTERM);
    let _ = child.wait();
    let _ = reader.join();
    Some(text())
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let Some(coloured) = logged_to_terminal(None) else {
        return;
    };
    assert!(
        coloured.contains("\x1b["),
        "no colour on a terminal:\n{coloured:?}"
    );
    let Some(plain) = logged_to_terminal(Some("1")) else {
        return;
    };
    assert!(plain.contains("agent ready"), "{plain:?}");
    assert!(
        !plain.contains("\x1b["),
        "colour despite NO_COLOR:\n{plain:?}"
    );
}
