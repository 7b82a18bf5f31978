//! The routes: `/api/query`, `/api/tail`, `/api/errors`, and the viewer's
//! assets. Authentication, CORS and counting happen around them in
//! [`super::handle`].

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use tokio::sync::mpsc;

use super::body::{self, Body, BodyError};
use super::errors::Groups;
use super::tail::{self, Item, Kill, Refused};
use super::{viewer, Api};
use crate::event::Tier;
use crate::pipeline::now_ms;
use crate::read::{self, Filter, FilterParams, QueryError, Stats};

/// Events in flight between the query engine and the response.
const QUERY_CHANNEL: usize = 256;
/// Default and largest `limit` of `/api/errors`.
const ERRORS_LIMIT: usize = 50;
const ERRORS_MAX_LIMIT: usize = 1000;

pub fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut s = msg.into();
    s.push('\n');
    let mut r = Response::new(body::full(s));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn bad(e: &QueryError) -> Response<Body> {
    let status = if e.is_bad_request() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::BAD_GATEWAY
    };
    text(status, e.to_string())
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub fn viewer(path: &str) -> Response<Body> {
    match viewer::asset(path) {
        Some(a) => {
            let mut r = Response::new(body::full(Bytes::from_static(a.body)));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(a.content_type));
            h.insert(
                "content-security-policy",
                HeaderValue::from_static(viewer::CSP),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `/api/query`: the engine's events as NDJSON, streamed. The status is
/// decided by the first event or the end of the query, whichever comes
/// first, so a query that cannot start is a proper 400/502.
pub async fn query(api: &Arc<Api>, q: Option<&str>) -> Response<Body> {
    let now = now_ms();
    let filter = match FilterParams::from_query(pairs(q)).and_then(|p| Filter::parse_query(&p, now))
    {
        Ok(f) => f,
        Err(e) => return bad(&e),
    };
    let Ok(permit) = api.queries.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many queries at once; try again shortly",
        );
    };
    let (tx, mut rx) = mpsc::channel(QUERY_CHANNEL);
    let reader = api.reader.clone();
    let mut task = tokio::spawn(async move {
        read::query(&reader, &filter, now, tx, Arc::new(Stats::default())).await
    });
    let first = tokio::select! {
        biased;
        e = rx.recv() => e,
        r = &mut task => match r {
            Ok(Ok(_)) => rx.recv().await,
            Ok(Err(e)) => return bad(&e),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("query failed: {e}")),
        },
    };
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, BodyError>>(16);
    tokio::spawn(async move {
        let _permit = permit;
        let mut next = first;
        let mut buf = Vec::new();
        while let Some(e) = next {
            buf.clear();
            e.write_json(&mut buf);
            // Batch what is already waiting into one chunk.
            while buf.len() < 64 * 1024 {
                match rx.try_recv() {
                    Ok(e) => e.write_json(&mut buf),
                    Err(_) => break,
                }
            }
            if out_tx.send(Ok(Bytes::copy_from_slice(&buf))).await.is_err() {
                task.abort();
                return; // client gone
            }
            next = rx.recv().await;
        }
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = %e, "api query failed part-way");
            let _ = out_tx.send(Err(Box::new(e))).await;
        }
    });
    ndjson(body::stream(out_rx, ()))
}

fn ndjson(b: Body) -> Response<Body> {
    let mut r = Response::new(b);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

/// `/api/tail`: SSE. The time window and `limit` do not apply to a tail.
pub fn tail(api: &Arc<Api>, q: Option<&str>, headers: &HeaderMap, kill: Kill) -> Response<Body> {
    let filter = match FilterParams::from_query(pairs(q)).and_then(|p| Filter::parse(&p, now_ms()))
    {
        Ok(f) => f,
        Err(e) => return bad(&e),
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let reg = match api.hub.register(filter, last_id, kill) {
        Ok(r) => r,
        Err(Refused::TooMany) => {
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many tail clients (api.max_tail_clients)",
            )
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, BodyError>>(1);
    let tail::Registration {
        rx: mut items,
        replay,
        guard,
    } = reg;
    // The forwarder turns items into frames; the hub's bounded channel is
    // the client's buffer, this one only hands over a frame at a time.
    tokio::spawn(async move {
        let _guard = guard;
        if tx
            .send(Ok(Bytes::from_static(b": connected\n\n")))
            .await
            .is_err()
        {
            return;
        }
        for chunk in replay.chunks(256) {
            if tx
                .send(Ok(tail::frame(&Item::Events(chunk.to_vec()))))
                .await
                .is_err()
            {
                return;
            }
        }
        while let Some(item) = items.recv().await {
            if tx.send(Ok(tail::frame(&item))).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(body::stream(rx, ()));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// `/api/errors?since=&tier=&limit=`.
pub async fn errors(api: &Arc<Api>, q: Option<&str>) -> Response<Body> {
    let (mut since, mut tier, mut limit) = (None, None, ERRORS_LIMIT);
    for (k, v) in pairs(q) {
        match k.as_str() {
            "since" if !v.is_empty() => since = Some(v),
            "tier" if !v.is_empty() => match Tier::parse(&v) {
                Some(t) => tier = Some(t),
                None => return bad(&QueryError::BadTier(v)),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) => limit = n.min(ERRORS_MAX_LIMIT),
                Err(_) => return bad(&QueryError::BadLimit(v)),
            },
            "since" | "tier" => {}
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {k:?}; use since, tier, limit"),
                )
            }
        }
    }
    let groups = match since {
        None => api
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .top(tier, limit),
        Some(since) => match window_groups(api, &since, tier).await {
            Ok(g) => g.top(tier, limit),
            Err(e) => return bad(&e),
        },
    };
    let mut r = Response::new(body::full(serde_json::to_vec(&groups).unwrap_or_default()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Error groups of the stored events since `since`, over `tier` or all.
async fn window_groups(
    api: &Arc<Api>,
    since: &str,
    tier: Option<Tier>,
) -> Result<Groups, QueryError> {
    let _permit = api
        .queries
        .clone()
        .try_acquire_owned()
        .map_err(|_| QueryError::Task("too many queries at once".into()))?;
    let now = now_ms();
    let mut groups = Groups::new(api.config.max_error_signatures);
    let tiers = tier.map_or(Tier::ALL.to_vec(), |t| vec![t]);
    for t in tiers {
        let p = FilterParams {
            tier: Some(t.as_str().into()),
            since: Some(since.to_string()),
            lvl: Some("error".into()),
            ..Default::default()
        };
        let filter = Filter::parse_query(&p, now)?;
        let (tx, mut rx) = mpsc::channel(QUERY_CHANNEL);
        let reader = api.reader.clone();
        let task = tokio::spawn(async move {
            read::query(&reader, &filter, now, tx, Arc::new(Stats::default())).await
        });
        let mut line = Vec::new();
        while let Some(e) = rx.recv().await {
            line.clear();
            e.write_json(&mut line);
            groups.add(&e, &Bytes::copy_from_slice(line.trim_ascii_end()));
        }
        task.await.map_err(|e| QueryError::Task(e.to_string()))??;
    }
    Ok(groups)
}
