//! Redis Streams fan-out (SPEC §12): every durable event of the listed
//! tiers is `XADD key MAXLEN ~ maxlen * event <ndjson>`.
//!
//! The publisher hangs off the durable-event tap ([`crate::pipeline::tap`]):
//! it sees events only after the commit that made them durable, so Redis
//! never has what the bucket will not. It subscribes to the lines of its tiers
//! only, so events of other tiers are not copied for it, and its own are
//! copied as lines (plus tier and ids), not as whole events. Two tasks, one bounded queue:
//!
//! - the *filter* takes each committed batch from the tap, keeps the
//!   listed tiers, renders their key, and `try_send`s them into a queue
//!   bounded both in events (`streams.queue`) and in bytes
//!   (`streams.queue_bytes`). A full queue drops the event and counts it
//!   (`logship_events_dropped_total{reason="stream"}`); nothing here ever
//!   waits on Redis, so the pipeline never does either;
//! - the *writer* takes up to `streams.batch` queued events and sends them
//!   as one pipelined round trip, bounded by a timeout. When Redis is down
//!   or too slow, it logs one warning, keeps that batch, and reconnects
//!   with backoff (200 ms doubling to 5 s) while the queue fills and the
//!   filter drops; when Redis answers again it logs one line and goes on.
//!
//! Delivery on the stream is best effort, never ahead of the disk: a batch
//! whose reply timed out is sent again after the reconnect, so a slow Redis
//! can receive an event twice (consumers de-duplicate by
//! `(instanceId, seq)`); a restart does not re-publish (committed events
//! are not read again), and events still queued when the process is killed
//! are not published (the bucket has them).

pub mod key;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;

use crate::config::StreamsConfig;
use crate::event::Tier;
use crate::ops::metrics::metrics;
use crate::ops::redis::redact_url;
use crate::pipeline::tap::{Recv, Subscription, Tap};
use key::StreamKey;

/// Longest wait for one connection attempt or one batch's replies.
const TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// One event on its way to Redis.
struct Item {
    key: Arc<str>,
    line: Bytes,
}

/// What both tasks share.
struct Shared {
    /// Events queued or in the writer's current batch.
    events: AtomicUsize,
    /// Their bytes (lines), bounded by `queue_bytes`.
    bytes: AtomicUsize,
    dropped: Counter,
    /// The writer's last round trip succeeded (or none failed yet).
    up: AtomicBool,
}

/// The running publisher; [`Publisher::drain`] waits for its queue to
/// empty at a graceful stop.
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// Start publishing `cfg`'s tiers from `tap`, when `[streams]` is on.
    /// Subscribes now, so no event committed after this call is missed.
    pub fn spawn(cfg: &StreamsConfig, tap: &Tap) -> anyhow::Result<Option<Publisher>> {
        let Some(target) = cfg.redis_target() else {
            return Ok(None);
        };
        let client = target
            .client()
            .map_err(|e| anyhow::anyhow!("streams.redis_url: {e}"))?;
        let key = cfg
            .stream_key()
            .map_err(|e| anyhow::anyhow!("streams.key: {e}"))?;
        let shared = Arc::new(Shared {
            events: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            dropped: metrics().dropped("stream"),
            up: AtomicBool::new(true),
        });
        let (tx, rx) = mpsc::channel(*cfg.queue.get_ref());
        let filter = Filter {
            tiers: cfg.tiers.get_ref().clone(),
            key,
            cached: Default::default(),
            queue_bytes: cfg.queue_bytes.0 as usize,
            tx,
            shared: shared.clone(),
        };
        tokio::spawn(filter.run(tap.subscribe_lines(cfg.tiers.get_ref())));
        let writer = Writer {
            client,
            url: redact_url(&target.url),
            maxlen: *cfg.maxlen.get_ref(),
            batch: *cfg.batch.get_ref(),
            rx,
            shared: shared.clone(),
        };
        tokio::spawn(writer.run());
        tracing::info!(redis = %redact_url(&target.url), tiers = ?cfg.tiers.get_ref(), key = %cfg.key.get_ref(), "publishing events to Redis Streams");
        Ok(Some(Publisher { shared }))
    }

    /// Wait (at most `timeout`) until every queued event was sent; not at
    /// all while Redis is unreachable (the queue would not move).
    pub async fn drain(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.events.load(Ordering::SeqCst) > 0
            && self.shared.up.load(Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Tap batches in, queued items out; never waits.
struct Filter {
    tiers: Vec<Tier>,
    key: StreamKey,
    /// Rendered keys by tier, when the key has no `{projectId}`.
    cached: [Option<Arc<str>>; 5],
    queue_bytes: usize,
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

impl Filter {
    async fn run(mut self, mut sub: Subscription) {
        let mut scratch = String::new();
        loop {
            let batch = match sub.recv().await {
                Recv::Batch(b) => b,
                Recv::Lagged(n) => {
                    // This task only filters, so it falls behind only when
                    // the runtime is starved; the batches' size is unknown,
                    // each lost batch counts as one drop.
                    tracing::warn!(
                        batches = n,
                        "stream publisher fell behind the pipeline; events skipped"
                    );
                    self.shared.dropped.inc_by(n);
                    continue;
                }
                Recv::Closed => return,
            };
            for t in batch.iter() {
                if !self.tiers.contains(&t.event.tier) {
                    continue;
                }
                let key = self.key_for(&t.event, &mut scratch);
                self.offer(key, t.line.clone());
            }
        }
    }

    fn key_for(&mut self, ev: &crate::event::Event, scratch: &mut String) -> Arc<str> {
        let slot = ev.tier.index();
        if let Some(k) = &self.cached[slot] {
            return k.clone();
        }
        self.key.render(ev, scratch);
        let k: Arc<str> = Arc::from(scratch.as_str());
        if self.key.per_tier_only() {
            self.cached[slot] = Some(k.clone());
        }
        k
    }

    fn offer(&self, key: Arc<str>, line: Bytes) {
        let len = line.len();
        if self.shared.bytes.load(Ordering::Relaxed) + len > self.queue_bytes {
            self.shared.dropped.inc();
            return;
        }
        self.shared.bytes.fetch_add(len, Ordering::Relaxed);
        self.shared.events.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(Item { key, line }).is_err() {
            // Full (or the writer is gone at exit).
            self.shared.bytes.fetch_sub(len, Ordering::Relaxed);
            self.shared.events.fetch_sub(1, Ordering::SeqCst);
            self.shared.dropped.inc();
        }
    }
}

/// Queued items out to Redis, a pipelined batch at a time.
struct Writer {
    client: redis::Client,
    /// For logs: the URL with any password masked.
    url: String,
    maxlen: u64,
    batch: usize,
    rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
}

impl Writer {
    async fn run(mut self) {
        let mut conn: Option<MultiplexedConnection> = None;
        let mut up = true;
        let mut backoff = BACKOFF_MIN;
        let mut batch: VecDeque<Item> = VecDeque::with_capacity(self.batch);
        loop {
            if batch.is_empty() {
                match self.rx.recv().await {
                    Some(item) => batch.push_back(item),
                    None => return,
                }
                while batch.len() < self.batch {
                    match self.rx.try_recv() {
                        Ok(item) => batch.push_back(item),
                        Err(_) => break,
                    }
                }
            }
            match self.send(&mut conn, &batch).await {
                Ok(()) => {
                    self.done(&mut batch);
                    backoff = BACKOFF_MIN;
                    if !up {
                        up = true;
                        self.shared.up.store(true, Ordering::SeqCst);
                        tracing::info!(redis = %self.url, "Redis reachable again; publishing to streams resumed");
                    }
                }
                Err(Failure::Refused(e)) => {
                    // Redis answered with an error (e.g. the key holds
                    // another type): sending again would not help.
                    tracing::warn!(redis = %self.url, error = %e, events = batch.len(), "Redis refused a batch of stream events; dropped (counted)");
                    self.shared.dropped.inc_by(batch.len() as u64);
                    self.done(&mut batch);
                }
                Err(Failure::Unreachable(e)) => {
                    conn = None;
                    if up {
                        up = false;
                        self.shared.up.store(false, Ordering::SeqCst);
                        tracing::warn!(redis = %self.url, error = %e, "Redis unreachable or too slow; stream events are dropped (counted) until it answers again");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// The batch left the queue (sent or dropped).
    fn done(&self, batch: &mut VecDeque<Item>) {
        let bytes: usize = batch.iter().map(|i| i.line.len()).sum();
        self.shared.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.shared.events.fetch_sub(batch.len(), Ordering::SeqCst);
        batch.clear();
    }

    /// One pipelined round trip of `XADD`s, connecting first if needed.
    async fn send(
        &self,
        conn: &mut Option<MultiplexedConnection>,
        batch: &VecDeque<Item>,
    ) -> Result<(), Failure> {
        use Failure::Unreachable;
        if conn.is_none() {
            let cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(TIMEOUT)
                .set_response_timeout(TIMEOUT);
            let made = tokio::time::timeout(
                TIMEOUT * 2,
                self.client
                    .get_multiplexed_async_connection_with_config(&cfg),
            )
            .await;
            match made {
                Ok(Ok(c)) => *conn = Some(c),
                Ok(Err(e)) => return Err(Unreachable(e.to_string())),
                Err(_) => return Err(Unreachable("connecting timed out".into())),
            }
        }
        let Some(c) = conn.as_mut() else {
            return Err(Unreachable("not connected".into()));
        };
        let mut pipe = redis::pipe();
        for item in batch {
            pipe.cmd("XADD")
                .arg(&*item.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.maxlen)
                .arg("*")
                .arg("event")
                .arg(&item.line[..])
                .ignore();
        }
        match tokio::time::timeout(TIMEOUT, pipe.query_async::<()>(c)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e))
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal() =>
            {
                Err(Unreachable(e.to_string()))
            }
            Ok(Err(e)) => Err(Failure::Refused(e.to_string())),
            Err(_) => Err(Unreachable("timed out".into())),
        }
    }
}

/// Why a batch was not sent.
enum Failure {
    /// No answer (down, too slow, connection lost): keep the batch, retry.
    Unreachable(String),
    /// Redis answered with an error.
    Refused(String),
}
