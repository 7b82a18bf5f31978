//! The `[api]` listener (SPEC §10): `/api/query`, `/api/tail` (SSE),
//! `/api/errors`, and the viewer at `/`, on its own port.
//!
//! - Every `/api/*` request needs `Authorization: Bearer <token>` when a
//!   token is set ([`auth`]); the viewer's assets do not (the page asks for
//!   the token). A refusal is 401, counted, never logged.
//! - CORS headers are sent only for an `Origin` listed in
//!   `api.cors_origins`, compared exactly.
//! - Every response is counted in `logship_api_requests_total{endpoint,code}`
//!   with `endpoint` one of a fixed set (never a path from the request).
//! - Tails are long-lived; queries are bounded by `api.max_queries`;
//!   connections by `max_tail_clients + max_queries + CONN_SLACK`.
//!
//! Binding is separate from serving, so a taken port fails the start with
//! a clear message and tests can bind port 0.

pub mod auth;
pub mod body;
pub mod errors;
pub mod routes;
pub mod tail;
pub mod viewer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ORIGIN, VARY};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ApiConfig;
use crate::ops::metrics::{metrics, ApiLabel};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::tap::Tap;
use crate::read::Reader;
use body::Body;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections beyond tails and queries (401s, assets, 429s).
const CONN_SLACK: usize = 32;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot listen on {addr} for the API (api.listen): {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Shared by every request.
pub struct Api {
    pub config: ApiConfig,
    pub reader: Reader,
    pub hub: Arc<tail::Hub>,
    /// Live error groups, fed from the tap.
    pub errors: Arc<Mutex<errors::Groups>>,
    pub queries: Arc<Semaphore>,
}

impl Api {
    /// The API state, with its hub task subscribed to `tap` (events from
    /// now on are kept for replay and grouped as errors).
    pub fn start(config: ApiConfig, reader: Reader, tap: &Tap) -> Arc<Api> {
        let hub = tail::Hub::new(
            config.max_tail_clients,
            config.tail_buffer,
            config.tail_replay,
        );
        let errors = Arc::new(Mutex::new(errors::Groups::new(config.max_error_signatures)));
        tokio::spawn(tail::run(
            hub.clone(),
            tap.subscribe(),
            errors.clone(),
            config.heartbeat.get(),
        ));
        Arc::new(Api {
            queries: Arc::new(Semaphore::new(config.max_queries)),
            config,
            reader,
            hub,
            errors,
        })
    }
}

/// A bound, not yet serving, listener.
pub struct Listener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

pub async fn bind(addr: SocketAddr) -> Result<Listener, ApiError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ApiError::Bind { addr, source })?;
    Ok(Listener {
        listener,
        local_addr,
    })
}

impl Listener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` fires; open tails are closed then.
    pub async fn serve(self, api: Arc<Api>, mut shutdown: Shutdown) {
        let max = api.config.max_tail_clients + api.config.max_queries + CONN_SLACK;
        let slots = Arc::new(Semaphore::new(max));
        tracing::info!(addr = %self.local_addr, "serving the API");
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.wait() => break,
            };
            let stream = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "api: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.wait() => break,
            };
            let (api, shutdown) = (api.clone(), shutdown.clone());
            tokio::spawn(async move {
                connection(stream, api, shutdown).await;
                drop(permit);
            });
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, api: Arc<Api>, mut shutdown: Shutdown) {
    // Fired by the tail hub to drop a client that does not keep up: such a
    // client never reads, so its body is never polled and only closing the
    // connection ends it.
    let kill = tail::Kill::default();
    let k = kill.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (api, kill) = (api.clone(), k.clone());
        async move { Ok::<_, Infallible>(handle(req, &api, kill).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.fired() => {}
        _ = shutdown.wait() => {}
    }
}

/// Which fixed endpoint label a path counts under.
fn endpoint(path: &str) -> &'static str {
    match path {
        "/api/query" => "query",
        "/api/tail" => "tail",
        "/api/errors" => "errors",
        p if !p.starts_with("/api/") => "viewer",
        _ => "other",
    }
}

/// Authenticate, route, add CORS, count.
pub async fn handle<B>(req: Request<B>, api: &Arc<Api>, kill: tail::Kill) -> Response<Body> {
    let path = req.uri().path().to_string();
    let ep = endpoint(&path);
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| api.config.cors_origins.iter().any(|c| c == o))
        .map(str::to_string);
    let mut resp = if req.method() == Method::OPTIONS && origin.is_some() {
        preflight()
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        routes::text(StatusCode::METHOD_NOT_ALLOWED, "only GET")
    } else if ep == "viewer" {
        routes::viewer(&path)
    } else if !auth::authorized(req.headers(), api.config.token()) {
        let mut r = routes::text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        r
    } else {
        let q = req.uri().query();
        match ep {
            "query" => routes::query(api, q).await,
            "tail" => routes::tail(api, q, req.headers(), kill),
            "errors" => routes::errors(api, q).await,
            _ => routes::text(
                StatusCode::NOT_FOUND,
                "not found; try /api/query, /api/tail or /api/errors",
            ),
        }
    };
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", o);
        h.insert(VARY, HeaderValue::from_static("Origin"));
    }
    metrics()
        .api_requests
        .get_or_create(&ApiLabel {
            endpoint: ep.to_string(),
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

fn preflight() -> Response<Body> {
    let mut r = routes::text(StatusCode::NO_CONTENT, "");
    *r.body_mut() = body::full(bytes::Bytes::new());
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, last-event-id"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    r
}
