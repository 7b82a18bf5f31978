//! The agent's HTTP endpoint (SPEC §7): `/metrics`, `/healthz`, `/readyz`.
//!
//! Deliberately tiny: HTTP/1 only, GET/HEAD only, no request bodies read,
//! every response built from in-memory state. What keeps a misbehaving
//! scraper from hurting the agent:
//! - at most [`MAX_CONNECTIONS`] connections at once (more wait in the
//!   kernel's accept queue),
//! - request headers must arrive within [`HEADER_TIMEOUT`],
//! - a connection is closed after [`CONNECTION_TIMEOUT`] whatever it does.
//!
//! Binding is separate from serving ([`bind`] then [`Endpoint::serve`]) so
//! that a bad `metrics.listen` fails the start-up with a clear message, and
//! tests can listen on port 0 and learn the real port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::metrics;
use super::readiness::Readiness;
use super::shutdown::Shutdown;

/// What `prometheus_client::encoding::text` writes: OpenMetrics text.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

pub const MAX_CONNECTIONS: usize = 32;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish once shutdown fires.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound, not yet serving, endpoint.
#[derive(Debug)]
pub struct Endpoint {
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// Bind `listen` (the `metrics.listen` setting).
pub async fn bind(listen: SocketAddr) -> anyhow::Result<Endpoint> {
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen} for /metrics (metrics.listen); \
             is another process using the port? pick another address or set metrics.enabled = false"
        )
    })?;
    let local_addr = listener.local_addr()?;
    Ok(Endpoint {
        listener,
        local_addr,
    })
}

/// Bind and serve until `shutdown` fires.
pub async fn serve(listen: SocketAddr, ready: Readiness, shutdown: Shutdown) -> anyhow::Result<()> {
    bind(listen).await?.serve(ready, shutdown).await
}

impl Endpoint {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accept connections until `shutdown` fires, then give open ones
    /// [`DRAIN_TIMEOUT`] to finish.
    pub async fn serve(self, ready: Readiness, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tracing::info!(addr = %self.local_addr, "serving /metrics, /healthz, /readyz");
        loop {
            // The semaphore is never closed, so acquiring cannot fail.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = shutdown.wait() => break,
            };
            let stream = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.wait() => break,
            };
            let ready = ready.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                connection(stream, ready, shutdown).await;
                drop(permit);
            });
        }
        // Wait (bounded) for the connections still open to release their slot.
        let _ =
            tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(MAX_CONNECTIONS as u32)).await;
        Ok(())
    }
}

async fn connection(stream: tokio::net::TcpStream, ready: Readiness, mut shutdown: Shutdown) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let resp = respond(&req, &ready);
        async move { Ok::<_, Infallible>(resp) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(CONNECTION_TIMEOUT);
    tokio::pin!(deadline);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = &mut deadline => return,
        _ = shutdown.wait() => {}
    }
    // Finish the request in flight, then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
}

/// Route one request. Public so the routing is testable without sockets.
pub fn respond<B>(req: &Request<B>, ready: &Readiness) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut resp = match req.uri().path() {
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(metrics().encode())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match ready.check(Instant::now()) {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /healthz or /readyz\n",
        ),
    };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    r
}
