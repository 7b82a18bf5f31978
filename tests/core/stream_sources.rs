//! Event-stream sources (SPEC §11) against an imitation of the Vercel API
//! and a generic NDJSON stream that drop connections mid-line, go down,
//! answer 429 and serve a 2 MiB event, while the agent is `kill -9`'d.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logship::event::{Event, Level, Tier};

use crate::support::agent::{assert_exactly_once, Agent, BIN};
use crate::support::vercel_mock::{Mock, MockDeployment, MockEvent};

const TOKEN: &str = "tok_S3CRET_4b1d9e";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `n` events of a deployment from index `from`; two events share each
/// millisecond, so a resume at the cursor re-sends one already written.
fn events(dep: &str, from: usize, n: usize, base: i64) -> Vec<MockEvent> {
    (from..from + n)
        .map(|i| MockEvent {
            id: format!("evt_{dep}_{i:05}"),
            created: base + (i / 2) as i64,
            kind: ["stdout", "stderr", "command", "stdout"][i % 4].to_string(),
            text: format!("{dep} build output line {i}"),
        })
        .collect()
}

fn deployment(id: &str, created: i64, state: &str, events: Vec<MockEvent>) -> MockDeployment {
    MockDeployment {
        id: id.to_string(),
        created,
        state: state.to_string(),
        events,
    }
}

/// Events of the deploy tier by their Vercel event id.
fn by_id(events: &[Event]) -> HashMap<String, Vec<&Event>> {
    let mut out: HashMap<String, Vec<&Event>> = HashMap::new();
    for e in events.iter().filter(|e| e.tier == Tier::Deploy) {
        let id = e
            .data
            .as_ref()
            .and_then(|d| d["id"].as_str())
            .unwrap_or("?");
        out.entry(id.to_string()).or_default().push(e);
    }
    out
}

/// The generic NDJSON source on the mock's `/stream`, its `X-Api-Key`
/// header set to `key` (a literal or a `${VAR}` reference).
fn ndjson_source(mock: &Mock, key: &str) -> String {
    format!(
        r#"
[[sources]]
name = "events"
kind = "http_ndjson"
tier = "system"
url = "{}/stream?follow=1"
headers = {{ X-Api-Key = "{key}" }}
id_field = "id"
cursor_field = "created"
cursor_param = "since"
"#,
        mock.url()
    )
}

fn vercel_config(mock: &Mock) -> String {
    format!(
        r#"
[[sources]]
name = "vercel"
kind = "vercel"
tier = "deploy"
token = "${{VERCEL_TOKEN}}"
project_id = "prj_test"
team_id = "team_t"
api_base = "{}"
poll_interval = "1s"
not_ready_after = "1s"
"#,
        mock.url()
    )
}

#[test]
fn vercel_events_exactly_once_across_kill9_drops_outage_and_429() {
    // Page size 2: the listing needs `pagination.next`. Every 61st event
    // line is cut in the middle and its connection dropped.
    let mock = Mock::start(TOKEN, Some("team_t"), 2, 61);
    let t0 = now_ms() - 3_600_000;
    let mut expected: Vec<MockEvent> = Vec::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut add = |dep: &str, evs: &[MockEvent]| {
        for e in evs {
            owner.insert(e.id.clone(), dep.to_string());
        }
        expected.extend_from_slice(evs);
    };
    // Outside the 24 h lookback: never followed.
    let old = events("dpl_old", 0, 4, t0 - 30 * 3_600_000);
    mock.add_deployment(deployment("dpl_old", t0 - 30 * 3_600_000, "READY", old));
    // Finished before the agent starts, with a 2 MiB event in the middle.
    let mut a = events("dpl_A", 0, 150, t0);
    a[70].text = format!("huge {}", "x".repeat(2 * 1024 * 1024));
    a[70].kind = "stderr".into();
    add("dpl_A", &a);
    mock.add_deployment(deployment("dpl_A", t0, "READY", a));
    // Building while the agent runs; B ends READY, C ends ERROR.
    mock.add_deployment(deployment("dpl_B", t0 + 10, "BUILDING", Vec::new()));
    mock.add_deployment(deployment("dpl_C", t0 + 20, "BUILDING", Vec::new()));
    let live_b = events("dpl_B", 0, 400, t0 + 100_000);
    let late_b = events("dpl_B", 400, 40, t0 + 100_000);
    let live_c = events("dpl_C", 0, 200, t0 + 200_000);
    add("dpl_B", &live_b);
    add("dpl_C", &live_c);
    add("dpl_B", &late_b);
    let publisher = {
        let mock = mock.clone();
        std::thread::spawn(move || {
            for i in (0..400).step_by(20) {
                mock.publish("dpl_B", live_b[i..i + 20].to_vec());
                if i < 200 {
                    mock.publish("dpl_C", live_c[i..i + 20].to_vec());
                }
                if i == 200 {
                    mock.set_state("dpl_C", "ERROR");
                }
                std::thread::sleep(Duration::from_millis(60));
            }
        })
    };

    let mut agent = Agent::with("build_idle_timeout = \"1h\"", &vercel_config(&mock));
    agent.env("VERCEL_TOKEN", TOKEN);
    let out = std::process::Command::new(BIN)
        .args(["check", "-c"])
        .arg(&agent.config)
        .env("VERCEL_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("kind=vercel"),
        "{text}"
    );
    assert!(
        text.contains("token=****** (set)") && !text.contains(TOKEN),
        "{text}"
    );
    // Everything at trace, but the config watcher's own events (the
    // stderr file sits beside the config: each line would be one more).
    agent.env("RUST_LOG", "trace,notify=warn");
    agent.enable_metrics();
    agent.start();
    let mut third = Instant::now();
    for pause in [700, 1300] {
        std::thread::sleep(Duration::from_millis(pause));
        agent.kill9();
        third = Instant::now();
        agent.start();
    }
    agent.wait_ready();
    // This process follows B before the outage (so it must reconnect).
    agent.wait_until("B followed", Duration::from_secs(30), |_| {
        mock.requests()
            .iter()
            .any(|r| r.at > third && r.status == 200 && r.path.contains("dpl_B"))
    });

    // An outage: /readyz turns 503 once the streams have failed for
    // longer than `not_ready_after`, and the agent does not storm.
    let down = Instant::now();
    mock.set_outage(true);
    agent.wait_until(
        "/readyz to report the failing stream",
        Duration::from_secs(20),
        |a| {
            let (code, body) = a.http_get("/readyz");
            code == 503 && body.contains("event stream")
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    mock.set_outage(false);
    let up = Instant::now();
    let outage = up - down;
    agent.wait_ready();
    // Events after the outage; then B is finished.
    publisher.join().unwrap();
    mock.publish("dpl_B", late_b.clone());
    mock.set_state("dpl_B", "READY");
    let last = late_b.last().unwrap().id.clone();
    agent.wait_until(
        "events published after the outage",
        Duration::from_secs(60),
        |a| by_id(&a.local_events()).contains_key(&last),
    );
    // This run reconnected after the outage and wrote events.
    let reconnects = agent.metric("logship_stream_reconnects_total{source=\"vercel\"}");
    let written = agent.metric("logship_stream_events_total{source=\"vercel\"}");

    // Rate limited for a moment, then killed once more.
    // (Killed only past the waits the 429s ask for: a new process does
    // not know about them.)
    mock.rate_limit(2);
    let limited_at = Instant::now();
    agent.wait_until("the agent past its 429s", Duration::from_secs(30), |_| {
        let reqs = mock.requests();
        let last_429 = reqs.iter().rposition(|r| r.status == 429);
        reqs.iter().filter(|r| r.status == 429).count() == 2
            && last_429.is_some_and(|i| {
                reqs[i..]
                    .iter()
                    .any(|r| r.status == 200 && r.path == reqs[i].path)
            })
    });
    let killed_at = Instant::now();
    agent.kill9();
    agent.start();
    agent.wait_ready();

    let total = expected.len();
    agent.wait_until("every Vercel event", Duration::from_secs(120), |a| {
        by_id(&a.local_events()).len() >= total
    });
    assert!(agent.term().success());

    // Exactly once, with the right ids, level, timestamp and text.
    let local = agent.local_events();
    let got = by_id(&local);
    let dups: Vec<_> = got
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| (k, v.len()))
        .collect();
    assert!(dups.is_empty(), "duplicated: {dups:?}");
    assert_eq!(
        got.len(),
        total,
        "unexpected ids: {:?}",
        got.keys()
            .filter(|k| !owner.contains_key(*k))
            .collect::<Vec<_>>()
    );
    for e in &expected {
        let ev = got.get(&e.id).unwrap_or_else(|| panic!("{} missing", e.id))[0];
        let dep = &owner[&e.id];
        assert_eq!(ev.build_id.as_deref(), Some(dep.as_str()), "{}", e.id);
        assert_eq!(ev.data.as_ref().unwrap()["deploymentId"], dep.as_str());
        assert_eq!(ev.project_id.as_deref(), Some("prj_test"));
        assert_eq!(ev.ts, e.created, "{}", e.id);
        let lvl = if e.kind == "stderr" {
            Level::Error
        } else {
            Level::Info
        };
        assert_eq!(ev.lvl, lvl, "{}", e.id);
        assert_eq!(ev.src, "vercel");
        if e.text.len() > 1024 * 1024 {
            assert!(ev.msg.starts_with("huge xxxx") && ev.msg.ends_with("[TRUNCATED]"));
        } else {
            assert_eq!(ev.msg, e.text);
        }
    }
    let mut seqs = std::collections::HashSet::new();
    assert!(local
        .iter()
        .all(|e| seqs.insert((e.instance_id.clone(), e.seq))));
    assert!(
        written > 0.0 && reconnects > 0.0,
        "written {written} reconnects {reconnects}"
    );

    // The requests the mock saw: none during the outage beyond what the
    // backoff allows, the first good one soon after it, 429s respected.
    let reqs = mock.requests();
    let during = reqs.iter().filter(|r| r.status == 0).count();
    // At most 4 tasks (listing, A, B, C), each waiting at least 0.5 s,
    // 1 s, 2 s, 4 s ... between attempts.
    let per_task = (outage.as_secs_f64() * 2.0 + 1.0).log2().ceil() as usize + 1;
    assert!(
        during <= 4 * per_task,
        "{during} requests during a {outage:?} outage"
    );
    let first_after = reqs
        .iter()
        .find(|r| r.at >= up && r.status == 200)
        .expect("a request after the outage");
    assert!(
        first_after.at - up <= outage * 2 + Duration::from_secs(1),
        "first request {:?} after a {outage:?} outage",
        first_after.at - up
    );
    for (i, r) in reqs.iter().enumerate().filter(|(_, r)| r.status == 429) {
        if let Some(next) = reqs[i + 1..]
            .iter()
            .find(|n| n.path == r.path && n.at < r.at + Duration::from_secs(30))
        {
            assert!(
                next.at - r.at >= Duration::from_millis(1900),
                "429 on {} retried after {:?}: {:?} killed {:?}",
                r.path,
                next.at - r.at,
                reqs[i.saturating_sub(3)..(i + 6).min(reqs.len())]
                    .iter()
                    .map(|q| (q.at.duration_since(limited_at), &q.path, q.status))
                    .collect::<Vec<_>>(),
                killed_at - limited_at
            );
        }
    }
    assert_eq!(reqs.iter().filter(|r| r.status == 429).count(), 2);
    assert!(mock.cuts() > 0, "no response was cut mid-line");
    assert!(
        !reqs.iter().any(|r| r.path.contains("dpl_old")),
        "followed a deployment outside lookback"
    );
    assert!(reqs.iter().filter(|r| r.status == 401).count() == 0);

    // The token appears nowhere in what the agent printed.
    let out = agent.stderr()
        + &std::fs::read_to_string(agent.dir.path().join("agent.stdout")).unwrap_or_default();
    assert!(
        out.contains("TRACE") || out.contains("trace"),
        "trace logging was on"
    );
    assert!(
        !out.contains(TOKEN) && !out.contains("S3CRET"),
        "token leaked into the agent's output"
    );
}

#[test]
fn generic_ndjson_stream_exactly_once_and_check_masks_headers() {
    let mock = Mock::start(TOKEN, None, 20, 97);
    let base = now_ms() - 60_000;
    let levels = ["info", "warn", "error"];
    let all: Vec<MockEvent> = (0..600)
        .map(|i| MockEvent {
            id: format!("n-{i:04}"),
            created: base + (i / 3) as i64,
            kind: levels[i % 3].to_string(),
            text: format!("stream message {i:04}"),
        })
        .collect();
    let body = ndjson_source(&mock, "key-${EVENTS_TOKEN}");
    let mut agent = Agent::with("", &body);
    agent.env("EVENTS_TOKEN", TOKEN);

    // `check` shows the header's name, never its value.
    let out = std::process::Command::new(BIN)
        .args(["check", "-c"])
        .arg(&agent.config)
        .env("EVENTS_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("kind=http_ndjson") && text.contains("X-Api-Key=******"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");

    let publisher = {
        let (mock, all) = (Arc::clone(&mock), all.clone());
        std::thread::spawn(move || {
            for chunk in all.chunks(30) {
                mock.publish_ndjson(chunk.to_vec());
                std::thread::sleep(Duration::from_millis(80));
            }
        })
    };
    agent.start();
    for pause in [600, 900] {
        std::thread::sleep(Duration::from_millis(pause));
        agent.kill9();
        agent.start();
    }
    publisher.join().unwrap();
    agent.wait_until("every stream event", Duration::from_secs(60), |a| {
        a.local_events().len() >= all.len()
    });
    assert!(agent.term().success());
    let events = agent.local_events();
    let texts: Vec<String> = all.iter().map(|e| e.text.clone()).collect();
    assert_exactly_once(&events, &texts);
    for ev in &events {
        let e = all.iter().find(|e| e.text == ev.msg).unwrap();
        assert_eq!(ev.ts, e.created);
        assert_eq!(ev.lvl.as_str(), e.kind);
        assert_eq!(ev.src, "events");
        assert_eq!(ev.kind, "event");
    }
    assert!(!agent.stderr().contains(TOKEN));
    assert!(mock.cuts() > 0, "no response was cut mid-line");
}

/// Stream events reach the alert engine (one batch per pipeline turn, as
/// file lines do): a threshold over a stream's warnings notifies once,
/// and every event is still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_are_alerted_on() {
    use crate::support::http_receiver::Receiver;
    let mock = Mock::start(TOKEN, None, 50, u64::MAX);
    let hook = Receiver::ok().await;
    let base = now_ms() - 60_000;
    let all: Vec<MockEvent> = (0..300)
        .map(|i| MockEvent {
            id: format!("a-{i:04}"),
            created: base + i as i64,
            kind: if i % 2 == 0 { "warn" } else { "info" }.to_string(),
            text: format!("upstream connection reset {i:04}"),
        })
        .collect();
    let body = ndjson_source(&mock, &format!("key-{TOKEN}"))
        + &format!(
            r#"
[alerts.channels.webhook]
url = "{}"
[[alerts.rules]]
name = "resets"
type = "threshold"
count = 100
window = "10m"
channels = ["webhook"]
[alerts.rules.match]
lvl = "warn"
msg = "(?i)connection reset"
"#,
            hook.url("/hook")
        );
    let mut agent = Agent::with("", &body);
    agent.start();
    for chunk in all.chunks(30) {
        mock.publish_ndjson(chunk.to_vec());
    }
    agent.wait_until("every stream event", Duration::from_secs(60), |a| {
        a.local_events().len() >= all.len()
    });
    hook.wait_until("the threshold's notification", |r| !r.is_empty())
        .await;
    assert!(agent.term().success());
    let got = hook.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].json()["rule"], "resets", "{:#}", got[0].json());
}
