//! An imitation of the two Vercel endpoints the agent follows, on an
//! ephemeral loopback port, with the faults a real connection has.
//!
//! - `GET /v6/deployments?projectId=&teamId=&since=&until=&limit=`: the
//!   project's deployments, newest first, `limit` (capped at
//!   [`Mock::page_size`]) per page, `pagination.next` = `created` of the
//!   page's last deployment, to be sent back as `until` (exclusive);
//! - `GET /v3/deployments/{id}/events?follow=1&since=`: NDJSON events
//!   `{type, created, payload: {id, text, date, deploymentId, serial}}`
//!   with `created >= since`, in order; with `follow=1` the response stays
//!   open while the deployment is not READY/ERROR/CANCELED and new events
//!   are sent as they are published; chunked transfer encoding, so a clean
//!   end (the last chunk) differs from a dropped connection;
//! - every request needs `Authorization: Bearer <token>` (else 401), and
//!   `teamId` when the mock has one (else 403);
//! - faults: every `drop_every`-th event line sent is cut in the middle
//!   and its connection dropped; an outage closes every connection at once; `rate_limit(n)`
//!   answers the next n requests 429 with `retry-after` and
//!   `x-ratelimit-reset`.
//!
//! Hand-written HTTP/1.1 over `std::net` (one thread per connection), so
//! the bytes on the wire — and where they stop — are exactly the test's.
//! `serve_ndjson` offers the same stream as a generic `http_ndjson` URL
//! (`/stream?since=`, events `{id, created, ts, level, msg}`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One event of a deployment.
#[derive(Clone, Debug)]
pub struct MockEvent {
    pub id: String,
    pub created: i64,
    pub kind: String,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct MockDeployment {
    pub id: String,
    pub created: i64,
    pub state: String,
    pub events: Vec<MockEvent>,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub status: u16,
}

#[derive(Default)]
struct State {
    deployments: Vec<MockDeployment>,
    /// The generic stream's events.
    ndjson: Vec<MockEvent>,
    requests: Vec<Request>,
    outage: bool,
    rate_limited: u32,
    /// Event lines sent (whole or cut), over all responses.
    lines_sent: u64,
    /// Responses cut in the middle of a line.
    cuts: u64,
}

pub struct Mock {
    pub addr: SocketAddr,
    pub token: String,
    pub team_id: Option<String>,
    pub page_size: usize,
    /// Every n-th event line sent is cut in the middle, and its
    /// connection dropped (0: never).
    pub drop_every: u64,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Mock {
    pub fn start(
        token: &str,
        team_id: Option<&str>,
        page_size: usize,
        drop_every: u64,
    ) -> Arc<Mock> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let mock = Arc::new(Mock {
            addr: listener.local_addr().unwrap(),
            token: token.to_string(),
            team_id: team_id.map(str::to_string),
            page_size,
            drop_every,
            state: Arc::new((Mutex::new(State::default()), Condvar::new())),
        });
        let m = mock.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let m = m.clone();
                std::thread::spawn(move || m.serve(conn));
            }
        });
        mock
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (lock, cv) = &*self.state;
        let out = f(&mut lock.lock().unwrap());
        cv.notify_all();
        out
    }

    pub fn add_deployment(&self, d: MockDeployment) {
        self.with(|s| s.deployments.push(d));
    }

    /// Publish more events of a deployment (followers see them live).
    pub fn publish(&self, deployment: &str, events: Vec<MockEvent>) {
        self.with(|s| {
            if let Some(d) = s.deployments.iter_mut().find(|d| d.id == deployment) {
                d.events.extend(events);
            }
        });
    }

    pub fn set_state(&self, deployment: &str, state: &str) {
        self.with(|s| {
            if let Some(d) = s.deployments.iter_mut().find(|d| d.id == deployment) {
                d.state = state.to_string();
            }
        });
    }

    pub fn publish_ndjson(&self, events: Vec<MockEvent>) {
        self.with(|s| s.ndjson.extend(events));
    }

    /// Down (every connection closed at once) or up again.
    pub fn set_outage(&self, down: bool) {
        self.with(|s| s.outage = down);
    }

    /// The next `n` requests get 429.
    pub fn rate_limit(&self, n: u32) {
        self.with(|s| s.rate_limited = n);
    }

    /// How many responses were cut in the middle of a line.
    pub fn cuts(&self) -> u64 {
        self.with(|s| s.cuts)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.with(|s| s.requests.clone())
    }

    fn record(&self, path: &str, status: u16) {
        self.with(|s| {
            s.requests.push(Request {
                at: Instant::now(),
                path: path.to_string(),
                status,
            })
        });
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut auth = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-api-key") {
                    auth = Some(v.trim().to_string());
                }
            }
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut conn = conn;
        if self.with(|s| s.outage) {
            self.record(path, 0);
            return; // closed without an answer
        }
        if self.with(|s| {
            let limited = s.rate_limited > 0;
            s.rate_limited = s.rate_limited.saturating_sub(1);
            limited
        }) {
            self.record(path, 429);
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 2;
            let _ = write!(conn, "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\nx-ratelimit-reset: {reset}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            return;
        }
        let want = if path == "/stream" {
            format!("key-{}", self.token)
        } else {
            format!("Bearer {}", self.token)
        };
        if auth.as_deref() != Some(want.as_str()) {
            self.record(path, 401);
            let _ = write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            return;
        }
        if path != "/stream" && self.team_id.is_some() && param("teamId") != self.team_id {
            self.record(path, 403);
            let _ = write!(
                conn,
                "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            return;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v6", "deployments"] => {
                self.record(path, 200);
                let body = self.list(&param);
                let _ = write!(conn, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            }
            ["v3", "deployments", id, "events"] => {
                let known = self.with(|s| s.deployments.iter().any(|d| d.id == *id));
                if !known {
                    self.record(path, 404);
                    let _ = write!(
                        conn,
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    return;
                }
                self.record(path, 200);
                let since = param("since")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(i64::MIN);
                let follow = param("follow").as_deref() == Some("1");
                self.stream(conn, Some(id.to_string()), since, follow);
            }
            ["stream"] => {
                self.record(path, 200);
                let since = param("since")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(i64::MIN);
                self.stream(conn, None, since, true);
            }
            _ => {
                self.record(path, 404);
                let _ = write!(
                    conn,
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        }
    }

    fn list(&self, param: &dyn Fn(&str) -> Option<String>) -> String {
        let since: i64 = param("since")
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MIN);
        let until: i64 = param("until")
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MAX);
        let limit: usize = param("limit").and_then(|s| s.parse().ok()).unwrap_or(20);
        let project_ok = param("projectId").as_deref() == Some("prj_test");
        self.with(|s| {
            let mut ds: Vec<&MockDeployment> = s
                .deployments
                .iter()
                .filter(|d| project_ok && d.created >= since && d.created < until)
                .collect();
            ds.sort_by_key(|d| std::cmp::Reverse(d.created));
            let page: Vec<&MockDeployment> = ds.into_iter().take(limit.min(self.page_size)).collect();
            let next = if page.len() == limit.min(self.page_size) {
                page.last().map(|d| serde_json::json!(d.created))
            } else {
                None
            };
            let list: Vec<serde_json::Value> = page
                .iter()
                .map(|d| serde_json::json!({"uid": d.id, "name": "app", "url": format!("{}.vercel.app", d.id), "created": d.created, "state": d.state, "readyState": d.state, "target": "production"}))
                .collect();
            serde_json::json!({"deployments": list, "pagination": {"count": list.len(), "next": next, "prev": null}}).to_string()
        })
    }

    fn events_of(&self, s: &State, deployment: &Option<String>) -> (Vec<MockEvent>, bool) {
        match deployment {
            Some(id) => s
                .deployments
                .iter()
                .find(|d| &d.id == id)
                .map(|d| {
                    (
                        d.events.clone(),
                        matches!(d.state.as_str(), "READY" | "ERROR" | "CANCELED"),
                    )
                })
                .unwrap_or_default(),
            None => (s.ndjson.clone(), false),
        }
    }

    fn line(deployment: &Option<String>, e: &MockEvent) -> String {
        match deployment {
            Some(d) => serde_json::json!({"type": e.kind, "created": e.created, "payload": {"id": e.id, "text": e.text, "date": e.created - 1, "deploymentId": d, "serial": format!("{}", e.created)}}).to_string(),
            None => serde_json::json!({"id": e.id, "created": e.created, "ts": e.created, "level": e.kind, "msg": e.text}).to_string(),
        }
    }

    /// Send events from `since` on; every `drop_every`-th line is cut.
    fn stream(&self, mut conn: TcpStream, deployment: Option<String>, since: i64, follow: bool) {
        if write!(conn, "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n").is_err() {
            return;
        }
        let mut sent = 0usize; // index into the events with created >= since
        loop {
            let (lock, cv) = &*self.state;
            let guard = lock.lock().unwrap();
            if guard.outage {
                return; // the connection dies with the outage
            }
            let (events, finished) = self.events_of(&guard, &deployment);
            let fresh: Vec<MockEvent> = events
                .into_iter()
                .filter(|e| e.created >= since)
                .skip(sent)
                .collect();
            if fresh.is_empty() {
                if finished || !follow {
                    let _ = conn.write_all(b"0\r\n\r\n");
                    return;
                }
                let _ = cv.wait_timeout(guard, Duration::from_millis(50)).unwrap();
                continue;
            }
            drop(guard);
            for e in fresh {
                let line = format!("{}\n", Self::line(&deployment, &e));
                let n = self.with(|s| {
                    s.lines_sent += 1;
                    s.lines_sent
                });
                if self.drop_every > 0 && n.is_multiple_of(self.drop_every) {
                    let half = &line.as_bytes()[..line.len() / 2];
                    let _ = write!(conn, "{:x}\r\n", half.len());
                    let _ = conn.write_all(half);
                    let _ = conn.write_all(b"\r\n");
                    let _ = conn.flush();
                    self.with(|s| s.cuts += 1);
                    return; // dropped mid-line
                }
                if write!(conn, "{:x}\r\n{line}\r\n", line.len()).is_err() {
                    return;
                }
                sent += 1;
            }
        }
    }
}
