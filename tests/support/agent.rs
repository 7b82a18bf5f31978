//! Drive the real `logship` binary like a user: write a config into a temp
//! dir, start and stop (or `kill -9`) the agent, and read back what it wrote
//! to local segments and to the directory bucket.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use logship::event::Event;

pub const BIN: &str = env!("CARGO_BIN_EXE_logship");

/// A temp dir with `logs/` for the applications and `data/` for the agent.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub config: PathBuf,
    starts: usize,
    /// Extra environment for every start.
    env: Vec<(String, String)>,
    /// Length of the stderr file when the running agent was started: what
    /// it logged since is after this offset.
    stderr_from: usize,
    /// `RLIMIT_NOFILE` (soft and hard) for the agent's next starts.
    nofile: Option<u64>,
}

impl Agent {
    /// A new agent whose config is `[agent]` + `body` (use `{logs}` and
    /// `{data}` as placeholders for the temp paths).
    pub fn new(body: &str) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        let config = dir.path().join("agent.toml");
        let a = Agent {
            dir,
            child: None,
            config,
            starts: 0,
            env: Vec::new(),
            stderr_from: 0,
            nofile: None,
        };
        a.write_config(body);
        a
    }

    /// The usual test config: one source over `logs/*.log`, small commit
    /// interval, metrics off (no fixed ports in parallel tests).
    pub fn simple(source_extra: &str) -> Agent {
        Agent::with(
            "",
            &format!(
                "[[sources]]\nname = \"app\"\ninclude = [\"{{logs}}/*.log\"]\n{source_extra}\n"
            ),
        )
    }

    /// The standard test header (`[agent]`, `[segments]` with a 50 ms
    /// commit interval plus `segments_extra`), then `body` (sources and
    /// anything else), then `[metrics]` off.
    pub fn with(segments_extra: &str, body: &str) -> Agent {
        Agent::new(&format!(
            r#"
[agent]
instance_id = "test-host"
data_dir = "{{data}}"
shutdown_timeout = "20s"

[segments]
commit_interval = "50ms"
{segments_extra}

{body}

[metrics]
enabled = false
"#
        ))
    }

    pub fn write_config(&self, body: &str) {
        let text = body
            .replace("{logs}", self.logs().to_str().unwrap())
            .replace("{data}", self.data().to_str().unwrap());
        fs::write(&self.config, text).unwrap();
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn bucket(&self) -> PathBuf {
        self.data().join("bucket")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("agent.stderr")
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "agent already running");
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap();
        self.stderr_from = self.stderr().len();
        // Kept too: a test can check that nothing secret is printed.
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.stdout"))
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn logship");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Start the agent with a hard (and soft) open-files limit of `n`, as
    /// `ulimit -n n` would.
    pub fn nofile_limit(&mut self, n: u64) {
        self.nofile = Some(n);
    }

    /// Descriptors the running agent has open now (`/proc/PID/fd`).
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Set an environment variable for the agent's next starts.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn term(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        signal(c.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "agent did not exit within 60 s of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freeze the agent (SIGSTOP), so a test can rotate files "between two
    /// of its reads" deterministically.
    pub fn pause(&self) {
        signal(self.pid(), libc::SIGSTOP);
    }

    pub fn resume(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    /// Make the source also match rotated names (`app.log.1`).
    pub fn include_rotated(&self) {
        let text = fs::read_to_string(&self.config).unwrap();
        let logs = self.logs();
        let old = format!("include = [\"{}/*.log\"]", logs.display());
        assert!(
            text.contains(&old),
            "config has no simple include to extend"
        );
        fs::write(
            &self.config,
            text.replace(
                &old,
                &format!("include = [\"{0}/*.log\", \"{0}/*.log.*\"]", logs.display()),
            ),
        )
        .unwrap();
    }

    /// Turn the metrics endpoint on, on an ephemeral loopback port.
    pub fn enable_metrics(&self) {
        let text = fs::read_to_string(&self.config).unwrap();
        assert!(
            text.contains("[metrics]\nenabled = false"),
            "config has no metrics switch"
        );
        fs::write(
            &self.config,
            text.replace(
                "[metrics]\nenabled = false",
                "[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"",
            ),
        )
        .unwrap();
    }

    /// The endpoint's address, from the agent's "metrics endpoint up" log.
    pub fn metrics_addr(&mut self) -> String {
        let mut addr = String::new();
        self.wait_until("the metrics endpoint", Duration::from_secs(20), |a| {
            // This run's line, not one of an earlier start.
            let log = a.stderr();
            let plain = strip_ansi(log.get(a.stderr_from..).unwrap_or(""));
            if let Some(line) = plain.lines().find(|l| l.contains("metrics endpoint up")) {
                if let Some(i) = line.find("listen=") {
                    addr = line[i + 7..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    return true;
                }
            }
            false
        });
        addr
    }

    /// GET a path from the endpoint: (status code, body).
    pub fn http_get(&mut self, path: &str) -> (u16, String) {
        use std::io::Write as _;
        let addr = self.metrics_addr();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// The value of one sample in `/metrics` (0 when absent).
    pub fn metric(&mut self, sample: &str) -> f64 {
        let (_, body) = self.http_get("/metrics");
        body.lines()
            .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Peak resident memory of the running agent, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Every event in the local segment files (open, sealed and uploaded).
    pub fn local_events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for root in ["system", "builds", "deploys", "projects", "lifecycle"] {
            for f in files_under(&self.data().join(root)) {
                if f.extension().is_some_and(|x| x == "ndjson") {
                    // A segment being written may end in a partly
                    // flushed line: only whole lines are events yet.
                    let raw = fs::read(&f).unwrap_or_default();
                    let whole = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    out.extend(parse_lines(&raw[..whole]));
                }
            }
        }
        out
    }

    /// Every object in the dir bucket: key -> events.
    pub fn bucket_objects(&self) -> HashMap<String, Vec<Event>> {
        dir_bucket_objects(&self.bucket())
    }

    pub fn bucket_events(&self) -> Vec<Event> {
        self.bucket_objects().into_values().flatten().collect()
    }

    /// Wait until `pred` holds, or panic with the agent's stderr.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&mut Agent) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !pred(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; agent stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Wait until `/readyz` says ready: sources watched and the first scan
    /// done (needs [`Agent::enable_metrics`]).
    pub fn wait_ready(&mut self) {
        self.wait_until("/readyz 200", Duration::from_secs(60), |a| {
            a.http_get("/readyz").0 == 200
        });
    }

    /// The read offset the last checkpoint records for the file at `path`
    /// (any object in the checkpoint with this `path` and an `offset`).
    pub fn checkpoint_offset(&self, path: &Path) -> Option<u64> {
        fn find(v: &serde_json::Value, path: &str) -> Option<u64> {
            match v {
                serde_json::Value::Object(m) => {
                    if m.get("path").and_then(|p| p.as_str()) == Some(path) {
                        if let Some(o) = m.get("offset").and_then(|o| o.as_u64()) {
                            return Some(o);
                        }
                    }
                    m.values().find_map(|x| find(x, path))
                }
                serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, path)),
                _ => None,
            }
        }
        let text = fs::read_to_string(self.data().join("state/checkpoint.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        find(&v, path.to_str()?)
    }

    /// Wait until at least `n` distinct events (by `(instanceId, seq)`) are
    /// stored, in local segments or the dir bucket: uploaded segments may
    /// be deleted locally before the test looks (near `segments.max_disk`).
    pub fn wait_stored(&mut self, n: usize) {
        self.wait_until(
            &format!("{n} events stored locally or in the bucket"),
            Duration::from_secs(60),
            |a| {
                std::thread::sleep(Duration::from_millis(100));
                let mut ids: Vec<(String, u64)> = a
                    .local_events()
                    .into_iter()
                    .chain(a.bucket_events())
                    .map(|e| (e.instance_id, e.seq))
                    .collect();
                ids.sort();
                ids.dedup();
                ids.len() >= n
            },
        );
    }

    /// Wait until the local segments hold at least `n` events.
    pub fn wait_local(&mut self, n: usize) {
        self.wait_until(
            &format!("{n} events in local segments"),
            Duration::from_secs(60),
            |a| a.local_events().len() >= n,
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if std::env::var_os("LOGSHIP_KEEP_TEST_DIRS").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("kept test dir {}", dir.keep().display());
        }
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a child process we spawned.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn parse_lines(raw: &[u8]) -> Vec<Event> {
    raw.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let s = std::str::from_utf8(l).expect("segments are UTF-8");
            Event::from_json(s).unwrap_or_else(|e| panic!("bad event line {s:?}: {e}"))
        })
        .collect()
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Append lines to a file (created if missing).
pub fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// A thread appending `batch` numbered lines to a file, pausing between
/// batches, until stopped; `stop` returns every line it wrote, in order.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Writer {
    pub fn spawn(path: PathBuf, prefix: &str, batch: usize, pause: Duration) -> Writer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, prefix) = (stop.clone(), prefix.to_string());
        let thread = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut i = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let lines = numbered(&prefix, i..i + batch);
                append(&path, &lines);
                all.extend(lines);
                i += batch;
                std::thread::sleep(pause);
            }
            all
        });
        Writer { stop, thread }
    }

    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("writer thread")
    }
}

pub fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} line {i:06}")).collect()
}

/// Assert that `events` hold exactly the lines `expected`, each once, with
/// unique `(instanceId, seq)`.
pub fn assert_exactly_once(events: &[Event], expected: &[String]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *seen.entry(e.msg.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(m, n)| format!("{m} x{n}"))
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|l| !seen.contains_key(l.as_str()))
        .collect();
    // A set: tests with tens of thousands of lines would be quadratic.
    let wanted: std::collections::HashSet<&str> = expected.iter().map(String::as_str).collect();
    let extra: Vec<_> = seen.keys().filter(|m| !wanted.contains(*m)).collect();
    assert!(
        dups.is_empty() && missing.is_empty() && extra.is_empty(),
        "exactly-once violated: {} duplicated {:?}..., {} missing {:?}..., {} unexpected {:?}...",
        dups.len(),
        dups.iter().take(5).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
    let mut ids = std::collections::HashSet::new();
    for e in events {
        assert!(
            ids.insert((e.instance_id.clone(), e.seq)),
            "duplicate (instanceId, seq) = ({}, {})",
            e.instance_id,
            e.seq
        );
    }
}

/// Every object of the dir bucket at `root`: key -> events (for agents
/// whose bucket is not under their data dir).
pub fn dir_bucket_objects(root: &Path) -> HashMap<String, Vec<Event>> {
    let mut out = HashMap::new();
    for f in files_under(root) {
        let key = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if key.starts_with(".meta/") || !key.ends_with(".ndjson.gz") {
            continue;
        }
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(fs::File::open(&f).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        out.insert(key, parse_lines(&raw));
    }
    out
}
