//! The viewer (`GET /` on the `[api]` listener) in a real browser: a real
//! agent with `[api]` and a token, Debian's chromium driven by playwright-core
//! (tests/viewer/viewer.mjs), every check made by what the page shows. Also
//! the node unit tests of the page's pure modules (tests/viewer/unit.test.mjs).
//!
//! Needs /usr/bin/chromium, node, and playwright-core in the CI cache (all
//! installed by `.ci/install-viewer-deps.sh`). Without them the test fails
//! when `CI` is set, and otherwise says why and returns.
//!
//! Screenshots go to the test's temp dir; with `LOGSHIP_UPDATE_SCREENSHOTS=1`
//! they replace `docs/screenshots/*.png` (the README's pictures).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::agent::{append, strip_ansi, Agent};

const TOKEN: &str = "viewer-test-token-4b1d9e";
const CHROMIUM: &str = "/usr/bin/chromium";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where `.ci/install-viewer-deps.sh` puts playwright-core.
fn node_dir() -> PathBuf {
    let cache = std::env::var_os("LOGSHIP_CI_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/logship-ci")
        });
    cache.join("viewer-node")
}

fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `Ok` when everything the browser test needs is installed, else why not.
fn browser_tools() -> Result<(), String> {
    if !have_node() {
        return Err("node is not installed".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    let pw = node_dir().join("node_modules/playwright-core");
    if !pw.is_dir() {
        return Err(format!("{} is missing", pw.display()));
    }
    Ok(())
}

/// Fail under CI (which must have the tools), otherwise explain and skip.
fn missing(reason: &str) {
    let how = "run `bash .ci/install-viewer-deps.sh` to install chromium and playwright-core";
    if std::env::var_os("CI").is_some() {
        panic!("viewer browser test cannot run: {reason}; {how}");
    }
    eprintln!("SKIPPING the viewer browser test: {reason}; {how}");
}

/// Run `node args..` with `envs` to completion (a hang guard, not a timing
/// check, kills it after 10 minutes); returns (success, combined output).
fn run_node(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> (bool, String) {
    let log = dir.join("node.out");
    let out = fs::File::create(&log).expect("node log");
    let err = out.try_clone().expect("node log");
    let mut child = Command::new("node")
        .args(args)
        .current_dir(repo())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn node");
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for node") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(st) => (st.success(), text),
        None => (false, format!("{text}\n(node killed after 10 minutes)")),
    }
}

/// The API's address, from the agent's "serving the API" log line.
fn api_addr(agent: &mut Agent) -> String {
    let mut addr = String::new();
    agent.wait_until("the API listener", Duration::from_secs(30), |a| {
        let log = strip_ansi(&a.stderr());
        let Some(line) = log.lines().find(|l| l.contains("serving the API")) else {
            return false;
        };
        let Some(i) = line.find("addr=") else {
            return false;
        };
        addr = line[i + 5..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        !addr.is_empty()
    });
    addr
}

/// One JSON log line; without a time field, `ts` is when the agent read it.
fn json_line(level: &str, msg: &str) -> String {
    serde_json::json!({ "level": level, "msg": msg }).to_string()
}

#[test]
fn viewer_modules_unit_tests() {
    if !have_node() {
        return missing("node is not installed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out) = run_node(dir.path(), &["--test", "tests/viewer/unit.test.mjs"], &[]);
    assert!(ok, "node --test tests/viewer/unit.test.mjs failed:\n{out}");
    assert!(
        out.contains("# fail 0"),
        "unexpected node test output:\n{out}"
    );
}

#[test]
fn viewer_in_chromium() {
    if let Err(reason) = browser_tools() {
        return missing(&reason);
    }
    let mut agent = Agent::with(
        "",
        &format!(
            r#"
[[sources]]
name = "app"
include = ["{{logs}}/app.log"]
format = "json"

[[sources]]
name = "builds"
include = ["{{logs}}/builds/*.log"]
tier = "build"
format = "json"

[api]
listen = "127.0.0.1:0"
token = "{TOKEN}"
"#
        ),
    );
    fs::create_dir_all(agent.logs().join("builds")).expect("builds dir");
    agent.start();
    let addr = api_addr(&mut agent);

    // Error groups the page must show with exactly these counts: the
    // varying parts (4+ digit numbers, hex ids) normalize away.
    let seed = [
        (
            "db timeout after",
            3,
            vec![
                "db timeout after 1234 ms",
                "db timeout after 5678 ms",
                "db timeout after 91011 ms",
            ],
        ),
        (
            "payment declined for card",
            2,
            vec![
                "payment declined for card 4f3a9c21e0b7",
                "payment declined for card 0b1c2d3e4f5a",
            ],
        ),
        (
            "disk almost full on",
            1,
            vec!["disk almost full on /var/lib/app"],
        ),
    ];
    let mut lines = Vec::new();
    for (_, _, msgs) in &seed {
        lines.extend(msgs.iter().map(|m| json_line("error", m)));
    }
    append(&agent.logs().join("app.log"), &lines);
    agent.wait_local(lines.len());
    let seed_json = serde_json::Value::Array(
        seed.iter()
            .map(|(text, count, _)| serde_json::json!({ "text": text, "count": count }))
            .collect(),
    );

    let shots = if std::env::var_os("LOGSHIP_UPDATE_SCREENSHOTS").is_some() {
        repo().join("docs/screenshots")
    } else {
        agent.dir.path().join("screenshots")
    };
    let (ok, out) = run_node(
        agent.dir.path(),
        &["tests/viewer/viewer.mjs"],
        &[
            ("LOGSHIP_VIEWER_URL", format!("http://{addr}")),
            ("LOGSHIP_VIEWER_TOKEN", TOKEN.to_string()),
            ("LOGSHIP_VIEWER_LOGS", agent.logs().display().to_string()),
            ("LOGSHIP_VIEWER_SEED", seed_json.to_string()),
            ("LOGSHIP_VIEWER_SHOTS", shots.display().to_string()),
            (
                "LOGSHIP_VIEWER_NODE_MODULES",
                node_dir().display().to_string(),
            ),
            ("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1".to_string()),
        ],
    );
    eprintln!("{out}");
    assert!(
        ok,
        "the viewer browser test failed:\n{out}\nagent stderr:\n{}",
        agent.stderr()
    );
    assert!(
        out.contains("[viewer] all checks passed"),
        "the browser script ended without passing every check:\n{out}"
    );
    // The token was sent on every request and never logged by the agent.
    assert!(
        !agent.stderr().contains(TOKEN),
        "the agent logged the token"
    );
}
