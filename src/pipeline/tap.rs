//! The durable-event tap: events the pipeline wrote, handed to whoever
//! listens (the API's live tail; later the Redis Streams publisher) right
//! after `commit()` made them durable.
//!
//! Invariants:
//! - **Zero cost when nobody listens.** The pipeline checks one atomic
//!   subscriber count per event — the count of subscribers to the event's
//!   tier ([`Tap::subscribe_tiers`]) — and copies nothing when it is zero.
//! - **Never blocks the pipeline.** Batches go into a bounded broadcast
//!   ring; a subscriber that falls behind loses the oldest batches and is
//!   told how many ([`Recv::Lagged`]), which it counts. Events collected
//!   between two commits are capped too ([`MAX_PENDING`]); beyond that
//!   they are dropped and counted (`logship_events_dropped_total{reason="tap"}`).
//! - **Only what is durable, only what is redacted.** Events are collected
//!   after they were appended (post-redaction) and published after the
//!   commit that fsynced them; a failed commit stops the pipeline, and the
//!   collected batch is never published.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::event::{Event, Tier};
use crate::ops::metrics::metrics;

/// Batches kept for subscribers that are behind.
const RING: usize = 1024;
/// Most events collected between two commits.
pub const MAX_PENDING: usize = 65_536;

/// One durable event: the parsed event (for filtering) and its NDJSON line
/// exactly as written (without the trailing newline).
#[derive(Clone, Debug)]
pub struct TapEvent {
    pub event: Event,
    pub line: Bytes,
}

/// The events one commit made durable, in write order.
pub type Batch = Arc<Vec<TapEvent>>;

struct Shared {
    /// Subscribers per tier (indexed by [`slot`]).
    subscribers: [AtomicUsize; 5],
    /// Of those, the ones that need the whole parsed event (not only its
    /// line, tier, level, `ts`, `seq` and ids).
    need_event: [AtomicUsize; 5],
    tx: broadcast::Sender<Batch>,
}

/// The subscribing side; cheap to clone.
#[derive(Clone)]
pub struct Tap {
    shared: Arc<Shared>,
}

impl Default for Tap {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(RING);
        Tap {
            shared: Arc::new(Shared {
                subscribers: Default::default(),
                need_event: Default::default(),
                tx,
            }),
        }
    }
}

impl Tap {
    /// Events published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.subscription(&Tier::ALL, true)
    }

    /// Lines published from now on, collected at least for `tiers`
    /// (batches may hold other tiers' events too, when another subscriber
    /// wants them: filter on receipt). For such a subscriber alone, a
    /// [`TapEvent`]'s `event` carries only `tier`, `lvl`, `ts`, `seq` and
    /// the ids — `line` is the whole event — so the pipeline does not
    /// copy strings nobody reads.
    pub fn subscribe_lines(&self, tiers: &[Tier]) -> Subscription {
        self.subscription(tiers, false)
    }

    fn subscription(&self, tiers: &[Tier], need_event: bool) -> Subscription {
        let mut tiers = tiers.to_vec();
        tiers.sort();
        tiers.dedup();
        for t in &tiers {
            self.shared.subscribers[t.index()].fetch_add(1, Ordering::SeqCst);
            if need_event {
                self.shared.need_event[t.index()].fetch_add(1, Ordering::SeqCst);
            }
        }
        Subscription {
            rx: self.shared.tx.subscribe(),
            shared: self.shared.clone(),
            tiers,
            need_event,
        }
    }

    /// The pipeline's end of this tap.
    pub fn collector(&self) -> Collector {
        Collector {
            shared: self.shared.clone(),
            pending: Vec::new(),
            dropped: 0,
        }
    }
}

/// What [`Subscription::recv`] returns.
#[derive(Debug)]
pub enum Recv {
    Batch(Batch),
    /// This many batches were lost because the subscriber fell behind.
    Lagged(u64),
    /// The pipeline is gone.
    Closed,
}

/// One listener. Dropping it unsubscribes.
pub struct Subscription {
    rx: broadcast::Receiver<Batch>,
    shared: Arc<Shared>,
    tiers: Vec<Tier>,
    need_event: bool,
}

impl Subscription {
    pub async fn recv(&mut self) -> Recv {
        match self.rx.recv().await {
            Ok(b) => Recv::Batch(b),
            Err(broadcast::error::RecvError::Lagged(n)) => Recv::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Recv::Closed,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for t in &self.tiers {
            self.shared.subscribers[t.index()].fetch_sub(1, Ordering::SeqCst);
            if self.need_event {
                self.shared.need_event[t.index()].fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Owned by the pipeline thread: collects appended events, publishes them
/// at commit.
pub struct Collector {
    shared: Arc<Shared>,
    pending: Vec<TapEvent>,
    dropped: u64,
}

impl Collector {
    /// Note an event just appended (`line` with or without its newline).
    /// One atomic load when nobody listens.
    #[inline]
    pub fn offer(&mut self, event: &Event, line: &[u8]) {
        let tier = event.tier.index();
        if self.shared.subscribers[tier].load(Ordering::Relaxed) == 0 {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.dropped += 1;
            return;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let event = if self.shared.need_event[tier].load(Ordering::Relaxed) > 0 {
            event.clone()
        } else {
            Event {
                ts: event.ts,
                lvl: event.lvl,
                seq: event.seq,
                project_id: event.project_id.clone(),
                build_id: event.build_id.clone(),
                user_id: event.user_id.clone(),
                req_id: event.req_id.clone(),
                ..Event::empty(event.tier)
            }
        };
        self.pending.push(TapEvent {
            event,
            line: Bytes::copy_from_slice(line),
        });
    }

    /// Forget what was collected since the last publish: those events were
    /// rolled back (`pipeline::disk`) and are read again, with new `seq`s.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Hand what was collected to subscribers; call right after a
    /// successful commit.
    pub fn publish(&mut self) {
        if self.dropped > 0 {
            metrics().dropped("tap").inc_by(self.dropped);
            self.dropped = 0;
        }
        if self.pending.is_empty() {
            return;
        }
        let batch = Arc::new(std::mem::take(&mut self.pending));
        // No receiver (all left since the offer) is not an error.
        let _ = self.shared.tx.send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_collected_without_subscribers_and_published_at_commit() {
        let tap = Tap::default();
        let mut c = tap.collector();
        let e = Event::empty(Tier::System);
        c.offer(&e, b"{}\n");
        assert!(c.pending.is_empty());
        let mut sub = tap.subscribe();
        c.offer(&e, b"{\"a\":1}\n");
        c.offer(&e, b"{\"a\":2}\n");
        c.publish();
        match sub.recv().await {
            Recv::Batch(b) => assert_eq!(
                b.iter().map(|t| &t.line[..]).collect::<Vec<_>>(),
                [&b"{\"a\":1}"[..], b"{\"a\":2}"]
            ),
            other => panic!("{other:?}"),
        }
        drop(sub);
        c.offer(&e, b"{}\n");
        assert!(c.pending.is_empty());
    }

    #[tokio::test]
    async fn only_subscribed_tiers_are_collected() {
        let tap = Tap::default();
        let mut c = tap.collector();
        let sub = tap.subscribe_lines(&[Tier::Deploy, Tier::Deploy]);
        c.offer(&Event::empty(Tier::System), b"{}");
        assert!(c.pending.is_empty());
        let mut e = Event::empty(Tier::Deploy);
        e.msg = "not copied for a lines-only subscriber".into();
        e.project_id = Some("p".into());
        c.offer(&e, b"{}");
        assert_eq!(c.pending.len(), 1);
        assert_eq!(c.pending[0].event.project_id.as_deref(), Some("p"));
        assert_eq!(c.pending[0].event.msg, "");
        // With a subscriber that needs whole events, they are whole.
        let all = tap.subscribe();
        c.offer(&e, b"{}");
        assert_eq!(c.pending[1].event, e);
        drop(all);
        drop(sub);
        c.pending.clear();
        c.offer(&Event::empty(Tier::Deploy), b"{}");
        assert!(c.pending.is_empty());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_lost() {
        let tap = Tap::default();
        let mut c = tap.collector();
        let mut sub = tap.subscribe();
        let e = Event::empty(Tier::System);
        for _ in 0..RING + 5 {
            c.offer(&e, b"{}");
            c.publish();
        }
        assert!(matches!(sub.recv().await, Recv::Lagged(5)));
    }
}
