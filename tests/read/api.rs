//! The `[api]` listener of a running agent, with real clients over TCP:
//! tail over SSE (filters, missing and wrong events counted, Last-Event-ID
//! resume, the 51st client refused, a reader that never reads dropped while
//! the pipeline goes on), the 401 rules, error groups against the templates
//! that produced them, and `/api/query` against `logship query`.

use std::time::{Duration, Instant};

use logship::event::{Event, Level};

use crate::support::agent::{append, Agent};
use crate::support::read::{
    assert_same, free_port, http_get, query, sse_events, today, Rng, Sse, SseEvent, DAY, Q,
    TEMPLATES,
};

const TOKEN: &str = "t0k-3xample";

fn agent(api_extra: &str) -> (Agent, String) {
    let port = free_port();
    let mut a = Agent::with(
        "",
        &format!("[[sources]]\nname = \"app\"\ninclude = [\"{{logs}}/*.log\"]\n\n[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n{api_extra}\n"),
    );
    a.enable_metrics();
    a.start();
    let addr = format!("127.0.0.1:{port}");
    a.wait_until("the api", Duration::from_secs(20), |a| {
        a.stderr().contains("api up")
    });
    (a, addr)
}

const AUTH: (&str, &str) = ("Authorization", "Bearer t0k-3xample");

/// Read `n` events from `c`, or fewer at EOF / timeout.
fn read_n(c: &mut Sse, n: usize) -> Vec<SseEvent> {
    let mut v = Vec::new();
    while v.len() < n {
        match c.next() {
            Some(e) => v.push(e),
            None => break,
        }
    }
    v
}

/// Lines built from the error templates (every 5th line) and info lines.
fn lines(rng: &mut Rng, from: usize, n: usize) -> (Vec<String>, [usize; 4]) {
    let mut per_template = [0; 4];
    let v = (from..from + n)
        .map(|i| {
            if i % 5 == 0 {
                let t = (rng.below(4)) as usize;
                per_template[t] += 1;
                let msg = TEMPLATES[t]
                    // A letter at the end: an all-digit id would be a <num>.
                    .replace("{hex}", &format!("{:09x}a", rng.next() & 0xf_ffff_ffff))
                    .replace("{num}", &format!("{}", 1000 + rng.below(90_000)))
                    .replace("{small}", &format!("{}", rng.below(9)));
                format!("{{\"level\":\"error\",\"msg\":\"{msg}\"}}")
            } else {
                format!(
                    "{{\"level\":\"info\",\"msg\":\"line {i} needle{}\"}}",
                    i % 3
                )
            }
        })
        .collect();
    (v, per_template)
}

#[test]
fn tail_resume_cap_auth_errors_and_query() {
    let (mut a, addr) = agent("");
    // 401 rules: missing and wrong tokens, on every /api/* endpoint; the
    // viewer needs none.
    for path in [
        "/api/tail",
        "/api/query?tier=system&since=1h",
        "/api/errors",
    ] {
        assert_eq!(http_get(&addr, path, &[]).0, 401, "{path}");
        assert_eq!(
            http_get(&addr, path, &[("Authorization", "Bearer wrong")]).0,
            401,
            "{path}"
        );
        assert_eq!(
            http_get(&addr, path, &[("Authorization", TOKEN)]).0,
            401,
            "{path} without Bearer"
        );
    }
    let (code, head, _) = http_get(&addr, "/", &[]);
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy"),
        "{head}"
    );
    assert_eq!(
        a.metric("logship_api_requests_total{endpoint=\"tail\",code=\"401\"}"),
        3.0
    );
    assert_eq!(
        a.metric("logship_api_requests_total{endpoint=\"query\",code=\"401\"}"),
        3.0
    );

    // Three tails with different filters, then lines written.
    let mut all = Sse::connect(&addr, "/api/tail", &[AUTH]);
    let mut errs = Sse::connect(&addr, "/api/tail?lvl=error", &[AUTH]);
    let mut grep = Sse::connect(&addr, "/api/tail?grep=needle1&tier=system", &[AUTH]);
    assert_eq!((all.status, errs.status, grep.status), (200, 200, 200));
    a.wait_until("3 tail clients", Duration::from_secs(20), |a| {
        a.metric("logship_tail_clients") == 3.0
    });
    let mut rng = Rng(7);
    let (first, mut counts) = lines(&mut rng, 0, 3000);
    append(&a.logs().join("app.log"), &first);
    a.wait_local(3000);
    let written: Vec<Event> = {
        let mut v = a.local_events();
        v.sort_by_key(|e| e.seq);
        v
    };
    let want_err: Vec<Event> = written
        .iter()
        .filter(|e| e.lvl == Level::Error)
        .cloned()
        .collect();
    let want_grep: Vec<Event> = written
        .iter()
        .filter(|e| e.msg.contains("needle1"))
        .cloned()
        .collect();
    let got_all = read_n(&mut all, written.len());
    let got_err = read_n(&mut errs, want_err.len());
    let got_grep = read_n(&mut grep, want_grep.len());
    assert_same("tail all", &sse_events(&got_all), &written);
    assert_same("tail lvl=error", &sse_events(&got_err), &want_err);
    assert_same("tail grep", &sse_events(&got_grep), &want_grep);
    assert!(
        got_all
            .iter()
            .zip(&written)
            .all(|(s, e)| s.id == Some(e.seq)),
        "id: is the seq"
    );

    // Resume: drop one client after 1000 events, write more, reconnect
    // with Last-Event-ID: exactly the rest, no gap, no repeat.
    let resume_at = got_all[999].id.unwrap();
    drop(all);
    let (more, c2) = lines(&mut rng, 3000, 500);
    for (c, n) in counts.iter_mut().zip(c2) {
        *c += n;
    }
    append(&a.logs().join("app.log"), &more);
    a.wait_local(3500);
    let mut written: Vec<Event> = a.local_events();
    written.sort_by_key(|e| e.seq);
    let id = resume_at.to_string();
    let mut again = Sse::connect(&addr, "/api/tail", &[AUTH, ("Last-Event-ID", id.as_str())]);
    let rest: Vec<Event> = written
        .iter()
        .filter(|e| e.seq > resume_at)
        .cloned()
        .collect();
    assert_same(
        "resumed tail",
        &sse_events(&read_n(&mut again, rest.len())),
        &rest,
    );
    drop((errs, grep, again));

    // The cap: 50 tails, the 51st gets 429.
    a.wait_until("tails closed", Duration::from_secs(30), |a| {
        a.metric("logship_tail_clients") == 0.0
    });
    let clients: Vec<Sse> = (0..50)
        .map(|_| Sse::connect(&addr, "/api/tail", &[AUTH]))
        .collect();
    assert!(clients.iter().all(|c| c.status == 200));
    assert_eq!(Sse::connect(&addr, "/api/tail", &[AUTH]).status, 429);
    assert_eq!(
        a.metric("logship_api_requests_total{endpoint=\"tail\",code=\"429\"}"),
        1.0
    );
    drop(clients);

    // Error groups: one per template, counts as written (live, and over
    // the stored window with since=).
    for path in ["/api/errors", "/api/errors?since=1h&tier=system"] {
        let (code, _, body) = http_get(&addr, path, &[AUTH]);
        assert_eq!(code, 200, "{path}");
        let groups: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        let mut got: Vec<(String, u64)> = groups
            .iter()
            .map(|g| {
                (
                    g["signature"].as_str().unwrap().to_string(),
                    g["count"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, u64)> = TEMPLATES
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| {
                let sig = t
                    .replace("{hex}", "<hex>")
                    .replace("{num}", "<num>")
                    .replace("{small}", "?");
                (sig, n as u64)
            })
            .collect();
        // "{small}" is a one-digit number, which normalization keeps: those
        // templates split by digit; compare them by prefix and total.
        want.sort();
        let fixed: Vec<_> = want
            .iter()
            .filter(|(s, _)| !s.contains('?'))
            .cloned()
            .collect();
        for f in &fixed {
            assert!(got.contains(f), "{path}: {f:?} not in {got:?}");
        }
        for (sig, n) in want.iter().filter(|(s, _)| s.contains('?')) {
            let (pre, post) = sig.split_once('?').unwrap();
            let total: u64 = got
                .iter()
                .filter(|(g, _)| g.starts_with(pre) && g.ends_with(post))
                .map(|(_, c)| c)
                .sum();
            assert_eq!(total, *n, "{path}: {sig}");
        }
        let sample = &groups[0]["sample"];
        assert_eq!(sample["lvl"], "error", "{path}");
        assert!(groups[0]["first_ts"].as_i64() <= groups[0]["last_ts"].as_i64());
    }

    // /api/query answers what `logship query` prints.
    let t0 = today();
    for q in [
        Q {
            tier: "system",
            since: t0 - DAY,
            ..Default::default()
        },
        Q {
            tier: "system",
            since: t0 - DAY,
            lvl: Some(Level::Error),
            limit: Some(100),
            ..Default::default()
        },
        Q {
            tier: "system",
            since: t0 - DAY,
            grep: Some("needle2"),
            ..Default::default()
        },
    ] {
        let (cli, _) = query(&a.config, &q.args());
        let (code, _, body) = http_get(&addr, &format!("/api/query?{}", q.params()), &[AUTH]);
        assert_eq!(code, 200);
        assert_same(
            &format!("api vs cli {q:?}"),
            &crate::support::agent::parse_lines(&body),
            &cli,
        );
        assert!(!cli.is_empty());
    }
    assert_eq!(
        http_get(&addr, "/api/query?tier=nope&since=1h", &[AUTH]).0,
        400
    );
    assert_eq!(http_get(&addr, "/api/query?tier=system", &[AUTH]).0, 400);
    assert!(
        !a.stderr().contains(TOKEN),
        "the token must never be logged"
    );
    assert!(
        !a.stderr().contains("wrong"),
        "refused tokens must never be logged"
    );
}

#[test]
fn a_reader_that_never_reads_is_dropped_and_the_pipeline_goes_on() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (mut a, addr) = agent("tail_buffer = 8\n");
    let slow = Sse::connect(&addr, "/api/tail", &[AUTH]);
    assert_eq!(slow.status, 200);
    shrink_receive_buffer(&slow.stream);
    let mut fast = Sse::connect(&addr, "/api/tail", &[AUTH]);
    let target = Arc::new(AtomicUsize::new(usize::MAX));
    let t = target.clone();
    let reader = std::thread::spawn(move || {
        let mut n = 0usize;
        while n < t.load(Ordering::SeqCst) && fast.next().is_some() {
            n += 1;
        }
        n
    });
    // 1 KiB lines until the slow client is dropped, in batches so that
    // commits (deliveries) keep coming.
    let pad = "x".repeat(1000);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut written = 0;
    while a.metric("logship_tail_dropped_total") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the slow client was never dropped"
        );
        let batch: Vec<String> = (written..written + 2000)
            .map(|i| format!("line {i} {pad}"))
            .collect();
        append(&a.logs().join("app.log"), &batch);
        written += 2000;
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pipeline goes on: more lines after the drop, all written.
    let after: Vec<String> = (written..written + 2000)
        .map(|i| format!("line {i} {pad}"))
        .collect();
    append(&a.logs().join("app.log"), &after);
    written += 2000;
    target.store(written, Ordering::SeqCst);
    a.wait_local(written);
    assert_eq!(
        a.local_events().len(),
        written,
        "the pipeline wrote every line"
    );
    assert_eq!(
        a.metric("logship_tail_dropped_total"),
        1.0,
        "only the slow client is dropped"
    );
    assert_eq!(
        reader.join().unwrap(),
        written,
        "the client that reads got every event"
    );
    drop(slow);
}

/// A small receive window, so a client that never reads stops the server
/// soon (instead of after the kernel's autotuned megabytes).
fn shrink_receive_buffer(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a valid pointer and length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}
