//! `kind = "http_ndjson"`: one long-lived GET whose body is NDJSON events.
//!
//! Each connection asks for events from the cursor (`cursor_param=<value of
//! cursor_field of the last event sent>`), so a reconnect resumes where the
//! last one stopped; the events the server sends again around the cursor
//! are dropped by id in the pipeline. Without `id_field` nothing can be
//! recognised, and without `cursor_field` every connection starts wherever
//! the server starts: exactly once needs both.
//!
//! Header values are secrets: they are marked sensitive for the HTTP
//! stack and never appear in a log line (errors are logged without URL).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde_json::Value;

use super::backoff::{rate_limit_wait, Backoff};
use super::lines::RawLine;
use super::state::{event_id, RecentIds};
use super::{client, field_text, Closed, Ctx, Ended, LineStream, Resume, StreamKey};
use crate::config::stream::StreamKind;

/// What one connection achieved.
enum Attempt {
    /// Connected; `progress`: it delivered at least one new event.
    Ran { progress: bool },
    /// Refused, unreachable or an error status.
    Failed,
    /// Told to come back later (429/503), after this long if it said.
    Later(Option<Duration>),
}

struct Follower {
    ctx: Ctx,
    key: StreamKey,
    url: reqwest::Url,
    headers: HeaderMap,
    id_field: Option<String>,
    cursor_field: Option<String>,
    cursor_param: String,
    cursor: Option<String>,
    /// Ids sent in this process (seeded from the checkpoint): tells new
    /// events from the overlap, to judge progress.
    seen: RecentIds,
    client: reqwest::Client,
}

/// Follow the stream until shutdown.
pub async fn run(ctx: Ctx, resume: Resume) {
    let StreamKind::HttpNdjson {
        url,
        headers,
        id_field,
        cursor_field,
        cursor_param,
    } = ctx.spec.kind.clone()
    else {
        return;
    };
    let mut map = HeaderMap::new();
    for (name, value) in &headers {
        // Both were checked by config validation.
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.expose()),
        ) {
            v.set_sensitive(true);
            map.insert(n, v);
        }
    }
    let mut f = Follower {
        key: StreamKey::new(&ctx.spec.name, ""),
        ctx,
        url,
        headers: map,
        id_field,
        cursor_field,
        cursor_param,
        cursor: resume.cursor,
        seen: RecentIds::from_ids(&resume.ids),
        client: client(),
    };
    let mut stop = f.ctx.shutdown.clone();
    tokio::select! {
        _ = f.follow() => {}
        _ = stop.wait() => {}
    }
}

impl Follower {
    async fn follow(&mut self) {
        let mut backoff = Backoff::new();
        let mut first = true;
        loop {
            if !first {
                self.ctx.count_reconnect();
            }
            first = false;
            let attempt = match self.attempt().await {
                Ok(a) => a,
                Err(Closed) => return,
            };
            let wait = match attempt {
                Attempt::Ran { progress } => {
                    if progress {
                        backoff.reset();
                    }
                    backoff.next_wait()
                }
                Attempt::Failed => backoff.next_wait(),
                Attempt::Later(asked) => asked.unwrap_or_default().max(backoff.next_wait()),
            };
            tracing::debug!(source = %self.ctx.spec.name, wait_ms = wait.as_millis() as u64, "stream reconnects after a pause");
            tokio::time::sleep(wait).await;
        }
    }

    fn request_url(&self) -> reqwest::Url {
        let mut url = self.url.clone();
        if let Some(c) = &self.cursor {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| *k != *self.cursor_param)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(&self.cursor_param, c);
        }
        url
    }

    async fn attempt(&mut self) -> Result<Attempt, Closed> {
        let name = self.ctx.spec.name.clone();
        let limit = self.ctx.spec.not_ready_after;
        let resp = self
            .client
            .get(self.request_url())
            .headers(self.headers.clone())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.ctx.health.failed(&self.key, limit);
                tracing::warn!(source = %name, error = %super::describe(e), "event stream: cannot connect");
                return Ok(Attempt::Failed);
            }
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            self.ctx.health.failed(&self.key, limit);
            let wait = rate_limit_wait(resp.headers(), std::time::SystemTime::now());
            tracing::warn!(source = %name, status = status.as_u16(), wait_s = wait.map(|w| w.as_secs()), "event stream: server asks to retry later");
            return Ok(Attempt::Later(wait));
        }
        if !status.is_success() {
            self.ctx.health.failed(&self.key, limit);
            tracing::warn!(source = %name, status = status.as_u16(), "event stream: error status");
            return Ok(Attempt::Failed);
        }
        self.ctx.health.ok(&self.key);
        let mut lines = LineStream::new(resp);
        let mut progress = false;
        let ended = loop {
            match lines.next().await {
                Ok(line) => progress |= self.line(line).await?,
                Err(ended) => break ended,
            }
        };
        if ended == Ended::Dropped {
            tracing::info!(source = %name, "event stream: connection dropped; resuming from the cursor");
        }
        Ok(Attempt::Ran { progress })
    }

    /// Send one line on; `true` if it is an event not seen before.
    async fn line(&mut self, line: RawLine) -> Result<bool, Closed> {
        let parsed = if self.id_field.is_some() || self.cursor_field.is_some() {
            serde_json::from_slice::<Value>(&line.bytes).ok()
        } else {
            None
        };
        let pick = |field: &Option<String>| {
            field
                .as_deref()
                .zip(parsed.as_ref())
                .and_then(|(f, v)| field_text(v, f))
        };
        let id = pick(&self.id_field).map(|s| event_id(&s));
        let cursor = pick(&self.cursor_field);
        let new = id.is_none_or(|id| self.seen.insert(id));
        self.ctx
            .sink
            .send(&self.key, id, cursor.clone(), line)
            .await?;
        if cursor.is_some() {
            self.cursor = cursor;
        }
        Ok(new)
    }
}
