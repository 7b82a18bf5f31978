//! Event-stream sources (SPEC §11): long-lived HTTP responses of NDJSON
//! events — a generic `http_ndjson` URL, or a Vercel project's deployments.
//!
//! Two halves, one direction:
//!
//! - **the HTTP side** runs on the async runtime: one task per stream
//!   ([`http_ndjson`], or [`vercel`]'s discovery plus one task per
//!   deployment) connects, splits the body into bounded lines
//!   ([`lines`]), and sends each line with its event id and cursor through
//!   a [`Sink`]. It reconnects with [`backoff`] from the cursor of the last
//!   line it sent, so nothing is skipped while the process lives;
//! - **the pipeline thread** owns the [`state::Streams`]: it drains the
//!   [`Inbox`], drops events whose id it already wrote, writes the rest
//!   through the line path and commits cursor and ids with the segments.
//!
//! The channel between them is bounded twice — in messages and in bytes —
//! and the HTTP side waits when it is full: backpressure reaches the TCP
//! connection, nothing is dropped. After a restart the tasks start from
//! the committed cursors, so what was lost with the process is sent again.

pub mod backoff;
pub mod http_ndjson;
pub mod lines;
pub mod state;
pub mod vercel;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::config::stream::{StreamKind, StreamSpec};
use crate::config::SourceConfig;
use crate::normalize::Normalizer;
use crate::ops::metrics::{metrics, SourceLabel};
use crate::ops::shutdown::Shutdown;
use lines::RawLine;
use state::Streams;

/// Messages queued between the HTTP side and the pipeline.
const QUEUE_MESSAGES: usize = 1024;
/// Bytes of lines queued between the HTTP side and the pipeline.
const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// `kind` of an `http_ndjson` event whose line names none.
pub const EVENT_KIND: &str = "event";
/// A response silent for this long is given up and reconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which stream an event belongs to: the source, and within it the
/// deployment (Vercel) or `""`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    pub source: Arc<str>,
    pub stream: Arc<str>,
}

impl StreamKey {
    pub fn new(source: &str, stream: &str) -> StreamKey {
        StreamKey {
            source: source.into(),
            stream: stream.into(),
        }
    }
}

/// One line for the pipeline.
#[derive(Debug)]
pub struct Item {
    pub key: StreamKey,
    /// The event's id, hashed ([`state::event_id`]); `None`: cannot be
    /// de-duplicated.
    pub id: Option<u64>,
    /// The cursor value this event moves the stream to.
    pub cursor: Option<String>,
    pub line: Vec<u8>,
    pub truncated: bool,
    /// This line's share of [`QUEUE_BYTES`], returned when it is dropped.
    _bytes: OwnedSemaphorePermit,
}

#[derive(Debug)]
pub enum Msg {
    Event(Item),
    /// The stream has ended for good (all its events were sent before).
    Done(StreamKey),
}

/// The pipeline is gone (shutting down).
#[derive(Debug)]
pub struct Closed;

/// Ends the pipeline's wait for file events (it polls the queue between).
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker(Arc::new(f))
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// The HTTP side's end of the queue.
#[derive(Clone, Debug)]
pub struct Sink {
    tx: mpsc::Sender<Msg>,
    bytes: Arc<Semaphore>,
    waker: Waker,
}

impl Sink {
    /// Queue one line, waiting while the queue is full.
    pub async fn send(
        &self,
        key: &StreamKey,
        id: Option<u64>,
        cursor: Option<String>,
        line: RawLine,
    ) -> Result<(), Closed> {
        let n = line.bytes.len().clamp(1, QUEUE_BYTES) as u32;
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| Closed)?;
        let item = Item {
            key: key.clone(),
            id,
            cursor,
            line: line.bytes,
            truncated: line.truncated,
            _bytes: permit,
        };
        self.push(Msg::Event(item)).await
    }

    pub async fn done(&self, key: &StreamKey) -> Result<(), Closed> {
        self.push(Msg::Done(key.clone())).await
    }

    async fn push(&self, msg: Msg) -> Result<(), Closed> {
        // Into an empty queue: the pipeline may be waiting; wake it (once
        // per batch, not per line).
        let was_empty = self.tx.capacity() == self.tx.max_capacity();
        self.tx.send(msg).await.map_err(|_| Closed)?;
        if was_empty {
            (self.waker.0)();
        }
        Ok(())
    }
}

/// The pipeline's end of the queue.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Msg>,
}

impl Inbox {
    pub fn try_recv(&mut self) -> Option<Msg> {
        self.rx.try_recv().ok()
    }
}

pub fn channel(waker: Waker) -> (Sink, Inbox) {
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    let sink = Sink {
        tx,
        bytes: Arc::new(Semaphore::new(QUEUE_BYTES)),
        waker,
    };
    (sink, Inbox { rx })
}

/// Which streams are failing, and since when (for `/readyz`).
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<Mutex<HashMap<StreamKey, Failing>>>,
}

#[derive(Clone, Copy, Debug)]
struct Failing {
    since: Instant,
    limit: Duration,
}

/// A stream that has failed for longer than its source allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingStream {
    pub source: String,
    pub for_: Duration,
    pub limit: Duration,
}

impl Health {
    /// The stream's last attempt failed (the first failure counts).
    pub fn failed(&self, key: &StreamKey, limit: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.entry(key.clone()).or_insert(Failing {
                since: Instant::now(),
                limit,
            });
        }
    }

    /// The stream is connected (or gone): not failing.
    pub fn ok(&self, key: &StreamKey) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(key);
        }
    }

    /// The stream failing longest past its limit at `now`, if any.
    pub fn failing_too_long(&self, now: Instant) -> Option<FailingStream> {
        let m = self.inner.lock().ok()?;
        m.iter()
            .map(|(k, f)| (k, now.saturating_duration_since(f.since), f.limit))
            .filter(|(_, for_, limit)| for_ > limit)
            .max_by_key(|(_, for_, _)| *for_)
            .map(|(k, for_, limit)| FailingStream {
                source: k.source.to_string(),
                for_,
                limit,
            })
    }
}

/// What the tasks need besides their spec.
#[derive(Clone, Debug)]
pub struct Link {
    pub runtime: tokio::runtime::Handle,
    pub shutdown: Shutdown,
    pub health: Health,
}

/// Where a stream resumes, from the committed state.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub cursor: Option<String>,
    pub ids: Vec<u64>,
    pub done: bool,
}

/// Start the HTTP side of every stream source; `None` if there is none.
pub fn start(
    link: &Link,
    specs: Vec<StreamSpec>,
    streams: &Streams,
    waker: Waker,
) -> Option<Inbox> {
    if specs.is_empty() {
        return None;
    }
    let (sink, inbox) = channel(waker);
    for spec in specs {
        let resume: HashMap<String, Resume> = streams
            .iter()
            .filter(|(k, _)| *k.source == *spec.name)
            .map(|(k, s)| {
                let r = Resume {
                    cursor: s.cursor.clone(),
                    ids: s.recent.to_vec(),
                    done: s.done,
                };
                (k.stream.to_string(), r)
            })
            .collect();
        let ctx = Ctx {
            spec,
            sink: sink.clone(),
            health: link.health.clone(),
            shutdown: link.shutdown.clone(),
        };
        match ctx.spec.kind.clone() {
            StreamKind::HttpNdjson { .. } => {
                let resume = resume.get("").cloned().unwrap_or_default();
                link.runtime.spawn(http_ndjson::run(ctx, resume));
            }
            StreamKind::Vercel { .. } => {
                link.runtime.spawn(vercel::run(ctx, resume));
            }
        }
    }
    Some(inbox)
}

/// One source's task context.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub spec: StreamSpec,
    pub sink: Sink,
    pub health: Health,
    pub shutdown: Shutdown,
}

impl Ctx {
    pub fn count_reconnect(&self) {
        metrics()
            .stream_reconnects
            .get_or_create(&SourceLabel {
                source: self.spec.name.clone(),
            })
            .inc();
    }
}

/// The normalizer of a stream source: as configured, except that `kind`
/// (which named the source type) is [`EVENT_KIND`] for its events.
pub fn normalizer(s: &SourceConfig, instance_id: &str) -> Normalizer {
    let mut cfg = s.clone();
    cfg.kind = EVENT_KIND.to_string();
    Normalizer::new(&cfg, instance_id)
}

/// The HTTP client of stream sources: connect timeout, no overall timeout
/// (responses are meant to last).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("logship/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The value at a dotted `path` (`payload.id`) of a JSON object, as text:
/// strings as they are, numbers in JSON form.
pub fn field_text(v: &Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A request error with its causes, without the URL (a query may carry a
/// token): "error sending request: connection refused".
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Read a whole (small) response body, at most `cap` bytes.
pub async fn body_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if out.len() + chunk.len() > cap {
            return Err(format!("response larger than {cap} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server finished the response (at a line boundary).
    Clean,
    /// The connection broke, stalled, or ended inside a line.
    Dropped,
}

/// The complete lines of a streaming response, one at a time.
#[derive(Debug)]
pub struct LineStream {
    resp: reqwest::Response,
    split: lines::Splitter,
    ready: std::collections::VecDeque<RawLine>,
    scratch: Vec<RawLine>,
}

impl LineStream {
    pub fn new(resp: reqwest::Response) -> LineStream {
        LineStream {
            resp,
            split: lines::Splitter::default(),
            ready: Default::default(),
            scratch: Vec::new(),
        }
    }

    /// The next non-blank line, or how the response ended.
    pub async fn next(&mut self) -> Result<RawLine, Ended> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(line);
            }
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) if !self.split.has_partial() => return Err(Ended::Clean),
                _ => return Err(Ended::Dropped),
            };
            self.split.push(&chunk, &mut self.scratch);
            let lines = self.scratch.drain(..);
            self.ready
                .extend(lines.filter(|l| !l.bytes.trim_ascii().is_empty()));
        }
    }
}
