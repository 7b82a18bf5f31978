//! `/api/tail`: live events as Server-Sent Events, fanned out from the
//! durable-event tap.
//!
//! One hub task receives the tap's batches and, under one lock, appends
//! them to the recent ring (for `Last-Event-ID`) and offers each client
//! its matching events of the batch as one delivery, with `try_send` on
//! the client's channel of at most `api.tail_buffer` deliveries —
//! nothing here ever waits for a client, and the tap never waits for the
//! hub (a hub that falls behind loses batches, counted as
//! `events_dropped_total{reason="tail"}`). A delivery that finds a client's
//! buffer full drops those events for that client; at the third such
//! delivery in a row the client is disconnected (its connection is shut
//! through its [`Kill`] switch, since a client that never reads never
//! polls its body) and counted in `logship_tail_dropped_total`.
//!
//! Registration and replay happen under the same lock as delivery, so a
//! resuming client sees every event after its `Last-Event-ID` exactly once:
//! first those still in the ring, then live ones.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::errors::Groups;
use crate::ops::metrics::metrics;
use crate::pipeline::tap::{Recv, Subscription, TapEvent};
use crate::read::Filter;

/// Consecutive full deliveries after which a client is disconnected.
pub const MAX_FULL: u32 = 3;

/// What a client's body receives: one delivery (the matching events of
/// one commit) or a heartbeat.
pub enum Item {
    Events(Vec<Arc<TapEvent>>),
    Heartbeat,
}

/// Fired to close one client's connection from outside.
#[derive(Clone, Debug)]
pub struct Kill(Arc<watch::Sender<bool>>);

impl Default for Kill {
    fn default() -> Self {
        Kill(Arc::new(watch::channel(false).0))
    }
}

impl Kill {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
    /// Resolves once fired.
    pub async fn fired(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

struct Client {
    filter: Filter,
    tx: mpsc::Sender<Item>,
    full_in_a_row: u32,
    kill: Kill,
}

struct State {
    recent: VecDeque<Arc<TapEvent>>,
    clients: HashMap<u64, Client>,
}

/// The tail fan-out, shared by the hub task and the request handlers.
pub struct Hub {
    state: Mutex<State>,
    next_id: AtomicU64,
    max_clients: usize,
    buffer: usize,
    replay: usize,
}

/// Why a client was not registered.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooMany,
}

/// A registered client: its items, the events to replay first, and the
/// guard that unregisters it when the response body is dropped.
pub struct Registration {
    pub rx: mpsc::Receiver<Item>,
    pub replay: Vec<Arc<TapEvent>>,
    pub guard: ClientGuard,
}

pub struct ClientGuard {
    hub: Arc<Hub>,
    id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    pub fn new(max_clients: usize, buffer: usize, replay: usize) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State {
                recent: VecDeque::new(),
                clients: HashMap::new(),
            }),
            next_id: AtomicU64::new(0),
            max_clients,
            buffer: buffer.max(1),
            replay,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain
        // pushes and removals); keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a client, replaying the matching events after `last_id`.
    pub fn register(
        self: &Arc<Hub>,
        filter: Filter,
        last_id: Option<u64>,
        kill: Kill,
    ) -> Result<Registration, Refused> {
        let mut st = self.lock();
        if st.clients.len() >= self.max_clients {
            return Err(Refused::TooMany);
        }
        let replay = match last_id {
            Some(id) => {
                // After the last event carrying that seq; if it left the
                // ring, every event with a larger seq.
                let start = st
                    .recent
                    .iter()
                    .rposition(|e| e.event.seq == id)
                    .map(|i| i + 1);
                st.recent
                    .iter()
                    .enumerate()
                    .filter(|(i, e)| start.map_or(e.event.seq > id, |s| *i >= s))
                    .map(|(_, e)| e)
                    .filter(|e| filter.keep_fields(&e.event))
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        };
        let (tx, rx) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        st.clients.insert(
            id,
            Client {
                filter,
                tx,
                full_in_a_row: 0,
                kill,
            },
        );
        metrics().tail_clients.set(st.clients.len() as i64);
        Ok(Registration {
            rx,
            replay,
            guard: ClientGuard {
                hub: self.clone(),
                id,
            },
        })
    }

    fn remove(&self, id: u64) {
        let mut st = self.lock();
        if st.clients.remove(&id).is_some() {
            metrics().tail_clients.set(st.clients.len() as i64);
        }
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Deliver one batch; never waits.
    fn deliver(&self, batch: &[TapEvent]) {
        let events: Vec<Arc<TapEvent>> = batch.iter().cloned().map(Arc::new).collect();
        let mut st = self.lock();
        let st = &mut *st;
        for e in &events {
            if st.recent.len() >= self.replay {
                st.recent.pop_front();
            }
            if self.replay > 0 {
                st.recent.push_back(e.clone());
            }
        }
        let mut gone = Vec::new();
        for (id, c) in st.clients.iter_mut() {
            let mine: Vec<_> = events
                .iter()
                .filter(|e| c.filter.keep_fields(&e.event))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            match c.tx.try_send(Item::Events(mine)) {
                Ok(()) => c.full_in_a_row = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // These events are lost for this client.
                    c.full_in_a_row += 1;
                    if c.full_in_a_row >= MAX_FULL {
                        gone.push((*id, true));
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push((*id, false)),
            }
        }
        self.drop_clients(st, gone);
    }

    fn heartbeat(&self) {
        let mut st = self.lock();
        let st = &mut *st;
        let gone = st
            .clients
            .iter()
            .filter_map(|(id, c)| match c.tx.try_send(Item::Heartbeat) {
                Err(mpsc::error::TrySendError::Closed(_)) => Some((*id, false)),
                _ => None, // a full buffer needs no heartbeat
            })
            .collect();
        self.drop_clients(st, gone);
    }

    fn drop_clients(&self, st: &mut State, gone: Vec<(u64, bool)>) {
        if gone.is_empty() {
            return;
        }
        for (id, slow) in gone {
            if let Some(c) = st.clients.remove(&id) {
                if slow {
                    metrics().tail_dropped.inc();
                    c.kill.fire();
                }
            }
        }
        metrics().tail_clients.set(st.clients.len() as i64);
    }
}

/// The hub task: tap batches to clients and to the live error groups,
/// heartbeats every `heartbeat`. Runs until the tap closes.
pub async fn run(
    hub: Arc<Hub>,
    mut sub: Subscription,
    errors: Arc<Mutex<Groups>>,
    heartbeat: Duration,
) {
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            r = sub.recv() => match r {
                Recv::Batch(b) => {
                    hub.deliver(&b);
                    let mut g = errors.lock().unwrap_or_else(|p| p.into_inner());
                    for e in b.iter() {
                        g.add(&e.event, &e.line);
                    }
                }
                Recv::Lagged(n) => {
                    metrics().dropped("tail").inc_by(n);
                }
                Recv::Closed => break,
            },
            _ = tick.tick() => hub.heartbeat(),
        }
    }
}

/// The SSE frames of one item.
pub fn frame(item: &Item) -> Bytes {
    match item {
        Item::Events(events) => {
            let mut b = Vec::with_capacity(events.iter().map(|e| e.line.len() + 32).sum());
            for e in events {
                b.extend_from_slice(b"id: ");
                b.extend_from_slice(itoa::Buffer::new().format(e.event.seq).as_bytes());
                b.extend_from_slice(b"\ndata: ");
                b.extend_from_slice(&e.line);
                b.extend_from_slice(b"\n\n");
            }
            Bytes::from(b)
        }
        Item::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Level, Tier};
    use crate::read::FilterParams;

    fn ev(seq: u64, lvl: Level) -> TapEvent {
        let mut e = Event::empty(Tier::System);
        (e.seq, e.lvl) = (seq, lvl);
        TapEvent {
            line: Bytes::from(e.to_json().trim_end().to_string()),
            event: e,
        }
    }

    fn any() -> Filter {
        Filter::parse(&FilterParams::default(), 0).unwrap()
    }

    #[test]
    fn cap_replay_and_slow_clients() {
        let hub = Hub::new(2, 2, 100);
        hub.deliver(&[ev(1, Level::Info), ev(2, Level::Error), ev(3, Level::Info)]);
        let errors_only = Filter::parse(
            &FilterParams {
                lvl: Some("error".into()),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        let a = hub.register(errors_only, Some(1), Kill::default()).unwrap();
        assert_eq!(
            a.replay.iter().map(|e| e.event.seq).collect::<Vec<_>>(),
            [2]
        );
        let kill = Kill::default();
        let mut b = hub.register(any(), None, kill.clone()).unwrap();
        assert_eq!(
            hub.register(any(), None, Kill::default()).err(),
            Some(Refused::TooMany)
        );
        // b never reads: its buffer of 2 deliveries fills, then three full
        // deliveries in a row drop it.
        let before = metrics().tail_dropped.get();
        for i in 0..6 {
            hub.deliver(&[ev(10 + i, Level::Info), ev(20 + i, Level::Info)]);
            assert_eq!(
                hub.clients(),
                if i < 4 { 2 } else { 1 },
                "after delivery {i}"
            );
        }
        assert!(metrics().tail_dropped.get() > before);
        assert!(*kill.0.borrow());
        assert!(matches!(b.rx.try_recv(), Ok(Item::Events(e)) if e[0].event.seq == 10));
        drop(a);
        assert_eq!(hub.clients(), 0);
    }
}
