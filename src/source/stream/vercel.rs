//! `kind = "vercel"`: a Vercel project's deployment events.
//!
//! **Discovery** lists the project's deployments created within `lookback`
//! (`GET /v6/deployments?projectId=…&teamId=…&since=…&limit=100`, following
//! `pagination.next` as `until=`) every `poll_interval`, and starts one
//! follower per deployment not yet finished in the checkpoint.
//!
//! **A follower** reads `GET /v3/deployments/{id}/events?follow=1&since=…`
//! and maps each event to a unified event: `payload.deploymentId` →
//! `buildId` (kept in `data.deploymentId`), `type` → `lvl` (`stderr`,
//! `fatal` and error types → `error`), `created` → `ts`, `payload.text` →
//! `msg`, the rest of `payload` and `type` into `data`. The cursor is
//! `created`; a reconnect asks from 1 ms before it, so events sharing the
//! cursor's millisecond are sent again (and dropped by `payload.id`)
//! whether the API treats `since` as inclusive or not.
//!
//! A deployment is finished when its state (from the listing) is READY,
//! ERROR or CANCELED **and** a connection made after that returned nothing
//! new: a connection dropped cleanly between two lines of a finished
//! deployment is not mistaken for its end. Only then is `Done` sent, after
//! all its events, so "finished" is committed only with them.
//!
//! 429 answers are respected (`retry-after`, `x-ratelimit-reset`); the
//! token is sent as a sensitive header and never logged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

use super::backoff::{rate_limit_wait, Backoff};
use super::lines::RawLine;
use super::state::{event_id, RecentIds};
use super::{body_capped, client, Closed, Ctx, Ended, LineStream, Resume, StreamKey};
use crate::config::stream::StreamKind;

/// Deployments followed at once (the rest wait for a free slot).
const MAX_FOLLOWERS: usize = 32;
/// Pages of the deployment list read per discovery.
const MAX_PAGES: usize = 20;
/// Largest deployment-list page accepted.
const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// `kind` of Vercel events.
pub const KIND: &str = "deploy";

/// Settings shared by discovery and the followers.
struct Shared {
    ctx: Ctx,
    api_base: reqwest::Url,
    auth: HeaderValue,
    project_id: String,
    team_id: Option<String>,
    client: reqwest::Client,
    /// Deployment id → its latest `readyState` from the listing.
    states: Mutex<HashMap<String, String>>,
    /// A follower wants a fresh listing (its stream ended).
    refresh: Notify,
}

/// A deployment as listed.
#[derive(Debug)]
struct Deployment {
    id: String,
    state: String,
}

fn is_final(state: &str) -> bool {
    matches!(state, "READY" | "ERROR" | "CANCELED")
}

/// Discover and follow until shutdown.
pub async fn run(ctx: Ctx, resume: HashMap<String, Resume>) {
    let StreamKind::Vercel {
        api_base,
        token,
        project_id,
        team_id,
        lookback,
        poll_interval,
    } = ctx.spec.kind.clone()
    else {
        return;
    };
    let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) else {
        return; // rejected by config validation
    };
    auth.set_sensitive(true);
    let shared = Arc::new(Shared {
        ctx,
        api_base,
        auth,
        project_id,
        team_id,
        client: client(),
        states: Mutex::new(HashMap::new()),
        refresh: Notify::new(),
    });
    let mut stop = shared.ctx.shutdown.clone();
    tokio::select! {
        _ = discover(shared, resume, lookback, poll_interval) => {}
        _ = stop.wait() => {}
    }
}

async fn discover(
    shared: Arc<Shared>,
    mut resume: HashMap<String, Resume>,
    lookback: Duration,
    poll_interval: Duration,
) {
    let key = StreamKey::new(&shared.ctx.spec.name, "");
    let mut done: HashSet<String> = resume
        .iter()
        .filter(|(_, r)| r.done)
        .map(|(d, _)| d.clone())
        .collect();
    let mut followers: HashMap<String, tokio::task::JoinHandle<(bool, Resume)>> = HashMap::new();
    let mut backoff = Backoff::new();
    loop {
        // A rate-limit wait is not cut short by a follower's refresh request.
        let mut limited = false;
        let wait = match list(&shared, lookback).await {
            Ok(deployments) => {
                shared.ctx.health.ok(&key);
                backoff.reset();
                // A finished follower hands back where it stood: done, or
                // the position a new follower resumes from.
                let finished: Vec<String> = followers
                    .iter()
                    .filter(|(_, h)| h.is_finished())
                    .map(|(d, _)| d.clone())
                    .collect();
                for d in finished {
                    let Some(handle) = followers.remove(&d) else {
                        continue;
                    };
                    // Finished: this await returns at once.
                    match handle.await {
                        Ok((true, _)) => {
                            done.insert(d);
                        }
                        Ok((false, at)) => {
                            resume.insert(d, at);
                        }
                        Err(_) => {}
                    }
                }
                // Only what the listing still shows is kept: deployments
                // older than `lookback` are never listed again.
                let listed: HashSet<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
                done.retain(|d| listed.contains(d.as_str()));
                resume.retain(|d, _| listed.contains(d.as_str()));
                if let Ok(mut states) = shared.states.lock() {
                    *states = deployments
                        .iter()
                        .map(|d| (d.id.clone(), d.state.clone()))
                        .collect();
                }
                for d in deployments {
                    if done.contains(&d.id) || followers.contains_key(&d.id) {
                        continue;
                    }
                    if followers.len() >= MAX_FOLLOWERS {
                        break;
                    }
                    let r = resume.remove(&d.id).unwrap_or_default();
                    let task = tokio::spawn(follow(shared.clone(), d.id.clone(), r));
                    followers.insert(d.id, task);
                }
                poll_interval
            }
            Err(Listing::Later(asked)) => {
                limited = true;
                asked.unwrap_or_default().max(backoff.next_wait())
            }
            Err(Listing::Failed) => {
                shared
                    .ctx
                    .health
                    .failed(&key, shared.ctx.spec.not_ready_after);
                backoff.next_wait()
            }
        };
        if limited {
            tokio::time::sleep(wait).await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.refresh.notified() => {
                // Many followers ending together ask once.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

enum Listing {
    Failed,
    Later(Option<Duration>),
}

/// The project's deployments created within `lookback`, newest first.
async fn list(shared: &Shared, lookback: Duration) -> Result<Vec<Deployment>, Listing> {
    let name = &shared.ctx.spec.name;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = now_ms - i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX / 2);
    let mut out = Vec::new();
    let mut until: Option<i64> = None;
    for _ in 0..MAX_PAGES {
        let mut url = endpoint(&shared.api_base, &["v6", "deployments"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("projectId", &shared.project_id);
            if let Some(t) = &shared.team_id {
                q.append_pair("teamId", t);
            }
            q.append_pair("since", &since.to_string());
            q.append_pair("limit", "100");
            if let Some(u) = until {
                q.append_pair("until", &u.to_string());
            }
        }
        let resp = shared
            .client
            .get(url)
            .header(AUTHORIZATION, shared.auth.clone())
            .timeout(LIST_TIMEOUT)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(source = %name, error = %super::describe(e), "vercel: cannot list deployments");
                return Err(Listing::Failed);
            }
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            let wait = rate_limit_wait(resp.headers(), SystemTime::now());
            tracing::warn!(source = %name, status = status.as_u16(), wait_s = wait.map(|w| w.as_secs()), "vercel: deployment list rate-limited");
            return Err(Listing::Later(wait));
        }
        if !status.is_success() {
            tracing::warn!(source = %name, status = status.as_u16(), "vercel: deployment list failed (check token, project_id, team_id)");
            return Err(Listing::Failed);
        }
        let body = body_capped(resp, MAX_LIST_BYTES).await.map_err(|e| {
            tracing::warn!(source = %name, error = %e, "vercel: deployment list unreadable");
            Listing::Failed
        })?;
        let page: Value = serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(source = %name, error = %e, "vercel: deployment list is not JSON");
            Listing::Failed
        })?;
        let listed = page["deployments"].as_array().map_or(&[][..], |v| v);
        for d in listed {
            let id = d["uid"].as_str().or_else(|| d["id"].as_str());
            let state = d["readyState"].as_str().or_else(|| d["state"].as_str());
            let created = d["created"].as_i64().or_else(|| d["createdAt"].as_i64());
            if created.is_some_and(|c| c < since) {
                continue;
            }
            if let Some(id) = id.filter(|i| !i.is_empty()) {
                out.push(Deployment {
                    id: id.to_string(),
                    state: state.unwrap_or("").to_string(),
                });
            }
        }
        match page["pagination"]["next"].as_i64() {
            Some(next) if !listed.is_empty() && until != Some(next) => until = Some(next),
            _ => break,
        }
    }
    Ok(out)
}

/// `base` with path segments appended (a base path such as `/api` stays).
fn endpoint(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// What one events connection achieved.
enum Attempt {
    Ran {
        ended: Ended,
        progress: bool,
    },
    Failed,
    Later(Option<Duration>),
    /// The deployment does not exist (any more).
    Gone,
}

struct Follower {
    shared: Arc<Shared>,
    deployment: String,
    key: StreamKey,
    /// `created` of the last event sent.
    cursor: Option<i64>,
    seen: RecentIds,
}

/// Follow one deployment until it is finished (`true`) or the pipeline is
/// gone; with where it stood.
async fn follow(shared: Arc<Shared>, deployment: String, resume: Resume) -> (bool, Resume) {
    let mut f = Follower {
        key: StreamKey::new(&shared.ctx.spec.name, &deployment),
        shared,
        deployment,
        cursor: resume.cursor.and_then(|c| c.parse().ok()),
        seen: RecentIds::from_ids(&resume.ids),
    };
    let done = f.run().await;
    f.shared.ctx.health.ok(&f.key);
    let at = Resume {
        cursor: f.cursor.map(|c| c.to_string()),
        ids: f.seen.to_vec(),
        done,
    };
    (done, at)
}

impl Follower {
    async fn run(&mut self) -> bool {
        let mut backoff = Backoff::new();
        let mut attempts = 0u64;
        loop {
            if attempts > 0 {
                self.shared.ctx.count_reconnect();
            }
            attempts += 1;
            let wait = match self.attempt().await {
                Err(Closed) => return false,
                Ok(Attempt::Gone) => {
                    tracing::warn!(source = %self.shared.ctx.spec.name, deployment = %self.deployment, "vercel: deployment not found; no longer followed");
                    return self.shared.ctx.sink.done(&self.key).await.is_ok();
                }
                Ok(Attempt::Ran { ended, progress }) => {
                    let state = self.state();
                    if ended == Ended::Clean && is_final(&state) {
                        if !progress {
                            // Finished, and a connection after that found nothing new.
                            return self.shared.ctx.sink.done(&self.key).await.is_ok();
                        }
                        backoff.reset();
                        continue; // confirm at once
                    }
                    if ended == Ended::Clean {
                        // Ended but not known to be finished: ask for a fresh listing.
                        self.shared.refresh.notify_one();
                    }
                    if progress {
                        backoff.reset();
                    }
                    backoff.next_wait()
                }
                Ok(Attempt::Failed) => backoff.next_wait(),
                Ok(Attempt::Later(asked)) => asked.unwrap_or_default().max(backoff.next_wait()),
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn state(&self) -> String {
        self.shared
            .states
            .lock()
            .ok()
            .and_then(|s| s.get(&self.deployment).cloned())
            .unwrap_or_default()
    }

    async fn attempt(&mut self) -> Result<Attempt, Closed> {
        let sh = self.shared.clone();
        let name = &sh.ctx.spec.name;
        let limit = sh.ctx.spec.not_ready_after;
        let mut url = endpoint(
            &sh.api_base,
            &["v3", "deployments", &self.deployment, "events"],
        );
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("follow", "1");
            q.append_pair("limit", "-1");
            if let Some(c) = self.cursor {
                q.append_pair("since", &(c - 1).to_string());
            }
            if let Some(t) = &sh.team_id {
                q.append_pair("teamId", t);
            }
        }
        let resp = sh
            .client
            .get(url)
            .header(AUTHORIZATION, sh.auth.clone())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                sh.ctx.health.failed(&self.key, limit);
                tracing::warn!(source = %name, deployment = %self.deployment, error = %super::describe(e), "vercel: cannot connect to the event stream");
                return Ok(Attempt::Failed);
            }
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Attempt::Gone);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            sh.ctx.health.failed(&self.key, limit);
            let wait = rate_limit_wait(resp.headers(), SystemTime::now());
            tracing::warn!(source = %name, deployment = %self.deployment, status = status.as_u16(), wait_s = wait.map(|w| w.as_secs()), "vercel: event stream rate-limited");
            return Ok(Attempt::Later(wait));
        }
        if !status.is_success() {
            sh.ctx.health.failed(&self.key, limit);
            tracing::warn!(source = %name, deployment = %self.deployment, status = status.as_u16(), "vercel: event stream error status");
            return Ok(Attempt::Failed);
        }
        sh.ctx.health.ok(&self.key);
        let mut lines = LineStream::new(resp);
        let mut progress = false;
        let ended = loop {
            match lines.next().await {
                Ok(line) => progress |= self.line(line).await?,
                Err(ended) => break ended,
            }
        };
        if ended == Ended::Dropped {
            tracing::info!(source = %name, deployment = %self.deployment, "vercel: event stream dropped; resuming from the cursor");
        }
        Ok(Attempt::Ran { ended, progress })
    }

    /// Map and send one event; `true` if it was not seen before.
    async fn line(&mut self, line: RawLine) -> Result<bool, Closed> {
        let sh = &self.shared;
        let Some(mapped) = map_event(
            &line.bytes,
            &self.deployment,
            &sh.project_id,
            sh.ctx.spec.tier.as_str(),
        ) else {
            crate::ops::metrics::metrics()
                .dropped("stream_invalid")
                .inc();
            return Ok(false);
        };
        let id = mapped.id.as_deref().map(event_id);
        let new = id.is_none_or(|id| self.seen.insert(id));
        // The cursor never moves back (events come in `created` order).
        let cursor = mapped
            .created
            .map(|c| self.cursor.map_or(c, |old| old.max(c)));
        let out = RawLine {
            bytes: mapped.line,
            truncated: line.truncated,
        };
        sh.ctx
            .sink
            .send(&self.key, id, cursor.map(|c| c.to_string()), out)
            .await?;
        if cursor.is_some() {
            self.cursor = cursor;
        }
        Ok(new)
    }
}

/// A Vercel event as a unified-event line.
#[derive(Debug)]
pub struct Mapped {
    pub id: Option<String>,
    pub created: Option<i64>,
    pub line: Vec<u8>,
}

/// The level of a Vercel event type.
pub fn level_of(event_type: &str) -> &'static str {
    let t = event_type.to_ascii_lowercase();
    if t == "stderr" || t == "fatal" || t.contains("error") {
        "error"
    } else if t.contains("warn") {
        "warn"
    } else {
        "info"
    }
}

/// Map one Vercel event (`{type, created, payload: {id, text, date,
/// deploymentId, serial, …}}`) to a unified event line of `tier`; `None`
/// for a line that is not such an object.
pub fn map_event(raw: &[u8], deployment: &str, project_id: &str, tier: &str) -> Option<Mapped> {
    let mut v: Map<String, Value> = serde_json::from_slice(raw).ok()?;
    let event_type = match v.remove("type") {
        Some(Value::String(t)) => t,
        _ => "unknown".into(),
    };
    let mut payload = match v.remove("payload") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let created = v
        .get("created")
        .and_then(Value::as_i64)
        .or_else(|| payload.get("date").and_then(Value::as_i64));
    let id = payload
        .get("id")
        .or_else(|| v.get("id"))
        .and_then(|i| match i {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    let text = match payload.remove("text") {
        Some(Value::String(t)) => t,
        _ => String::new(),
    };
    let deployment_id = match payload.get("deploymentId") {
        Some(Value::String(d)) if !d.is_empty() => d.clone(),
        _ => deployment.to_string(),
    };
    payload.insert("deploymentId".into(), Value::String(deployment_id.clone()));
    payload.insert("type".into(), Value::String(event_type.clone()));
    let mut event = json!({
        "tier": tier,
        "kind": KIND,
        "lvl": level_of(&event_type),
        "projectId": project_id,
        "buildId": deployment_id,
        "msg": text,
        "data": payload,
    });
    if let Some(ts) = created {
        event["ts"] = json!(ts);
    }
    Some(Mapped {
        id,
        created,
        line: serde_json::to_vec(&event).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_documented_shape() {
        let raw = br#"{"type":"stderr","created":1700000000123,"payload":{"id":"evt_1","text":"Error: boom","date":1700000000120,"deploymentId":"dpl_A","serial":"17"}}"#;
        let m = map_event(raw, "dpl_A", "prj_1", "deploy").unwrap();
        assert_eq!(m.id.as_deref(), Some("evt_1"));
        assert_eq!(m.created, Some(1700000000123));
        let v: Value = serde_json::from_slice(&m.line).unwrap();
        assert_eq!(v["buildId"], "dpl_A");
        assert_eq!(v["lvl"], "error");
        assert_eq!(v["ts"], 1700000000123i64);
        assert_eq!(v["msg"], "Error: boom");
        assert_eq!(v["data"]["deploymentId"], "dpl_A");
        assert_eq!(v["data"]["serial"], "17");
        assert_eq!(v["data"]["type"], "stderr");
        assert_eq!(level_of("stdout"), "info");
        assert_eq!(level_of("command"), "info");
        assert!(map_event(b"[1,2]", "d", "p", "deploy").is_none());
    }

    #[test]
    fn endpoints_keep_a_base_path() {
        let base = reqwest::Url::parse("http://127.0.0.1:9/api/").unwrap();
        assert_eq!(
            endpoint(&base, &["v6", "deployments"]).as_str(),
            "http://127.0.0.1:9/api/v6/deployments"
        );
    }
}
