//! A real HTTP/1.1 server (hyper) that records every request and answers
//! with a status chosen by a responder function — webhook, Slack, Discord,
//! PagerDuty and Twilio endpoints all look alike from here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

/// One request as received, with the status it was answered with.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub status: u16,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

/// Decides the status for the n-th request (0-based).
pub type Responder = Arc<dyn Fn(u64, &str) -> u16 + Send + Sync>;

struct State {
    seen: Mutex<Vec<Recorded>>,
    changed: Notify,
    responder: Responder,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Always 200.
    pub async fn ok() -> Receiver {
        Receiver::start(Arc::new(|_, _| 200)).await
    }

    pub async fn start(responder: Responder) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let state = Arc::new(State {
            seen: Mutex::new(Vec::new()),
            changed: Notify::new(),
            responder,
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, st.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.seen.lock().expect("lock").clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Wait until `cond` holds for the requests (a hang guard, not a timing
    /// assertion: the limit is far above any expected delay).
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&[Recorded]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let wait = self.state.changed.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            if cond(&self.requests()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, wait).await.is_err() {
                panic!("receiver never saw: {what}; got {:#?}", self.requests());
            }
        }
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    st: Arc<State>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let status = {
        let mut seen = st.seen.lock().expect("lock");
        let status = (st.responder)(seen.len() as u64, &path);
        seen.push(Recorded {
            method,
            path,
            headers,
            body,
            status,
            at: Instant::now(),
        });
        status
    };
    st.changed.notify_waiters();
    let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    Ok(resp)
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
