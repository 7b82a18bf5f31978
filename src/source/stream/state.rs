//! Where each event stream stands: its cursor and the ids of its most recent
//! events. Owned by the pipeline thread and committed in the checkpoint
//! with the segment lengths, exactly like a file offset.
//!
//! Exactly once follows from the order of operations on that one thread:
//! an event is checked against the recent ids, appended, and only then
//! recorded (cursor and id). A commit therefore describes the same events
//! as the segments it fsynced; after `kill -9` the segments are cut back to
//! the commit and the stream resumes from the committed cursor, and the
//! events re-sent around the cursor are recognised by id. Ids are kept as
//! 64-bit hashes, so memory per stream is fixed whatever the ids look like.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use super::{Item, StreamKey};

/// Ids remembered per stream: far more than the overlap a resume causes
/// (events at the cursor's own position).
pub const RECENT_IDS: usize = 256;

/// An event id, hashed.
pub fn event_id(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The last [`RECENT_IDS`] ids of a stream, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentIds {
    order: VecDeque<u64>,
    set: HashSet<u64>,
}

impl RecentIds {
    pub fn from_ids(ids: &[u64]) -> RecentIds {
        let mut r = RecentIds::default();
        for &id in ids {
            r.insert(id);
        }
        r
    }

    pub fn contains(&self, id: u64) -> bool {
        self.set.contains(&id)
    }

    /// Remember `id`; `false` if it was already known.
    pub fn insert(&mut self, id: u64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub fn to_vec(&self) -> Vec<u64> {
        self.order.iter().copied().collect()
    }
}

/// One stream's position (in memory; the checkpoint has its own type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Value of the cursor field of the last event written.
    pub cursor: Option<String>,
    pub recent: RecentIds,
    /// The stream has ended for good (a finished Vercel deployment).
    pub done: bool,
    /// Wall clock (ms) of the last change, for pruning.
    pub touched_ms: i64,
}

/// A stream's state as the checkpoint stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamCheckpoint {
    pub source: String,
    /// `""` for a single-stream source; the deployment id for Vercel.
    pub stream: String,
    pub cursor: Option<String>,
    pub ids: Vec<u64>,
    pub done: bool,
    pub touched_ms: i64,
}

/// All streams' states.
#[derive(Debug, Default)]
pub struct Streams {
    states: BTreeMap<StreamKey, StreamState>,
}

impl Streams {
    pub fn restore(saved: Vec<StreamCheckpoint>) -> Streams {
        let states = saved
            .into_iter()
            .map(|c| {
                let key = StreamKey::new(&c.source, &c.stream);
                let state = StreamState {
                    cursor: c.cursor,
                    recent: RecentIds::from_ids(&c.ids),
                    done: c.done,
                    touched_ms: c.touched_ms,
                };
                (key, state)
            })
            .collect();
        Streams { states }
    }

    pub fn get(&self, key: &StreamKey) -> Option<&StreamState> {
        self.states.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&StreamKey, &StreamState)> {
        self.states.iter()
    }

    /// Whether `item` is new (not among the stream's recent ids).
    pub fn is_new(&self, item: &Item) -> bool {
        match (item.id, self.states.get(&item.key)) {
            (Some(id), Some(s)) => !s.recent.contains(id),
            _ => true,
        }
    }

    /// `item` was written: move the stream past it.
    pub fn record(&mut self, item: &Item, now_ms: i64) {
        let s = self.states.entry(item.key.clone()).or_default();
        if let Some(id) = item.id {
            s.recent.insert(id);
        }
        if item.cursor.is_some() {
            s.cursor.clone_from(&item.cursor);
        }
        s.touched_ms = now_ms;
    }

    /// The stream ended for good; its ids are no longer needed.
    pub fn mark_done(&mut self, key: &StreamKey, now_ms: i64) {
        let s = self.states.entry(key.clone()).or_default();
        s.done = true;
        s.recent = RecentIds::default();
        s.touched_ms = now_ms;
    }

    /// Forget finished streams untouched for longer than their source's
    /// horizon (a Vercel deployment older than `lookback` is never listed
    /// again). Returns how many were dropped.
    pub fn prune(&mut self, horizon: impl Fn(&str) -> Option<Duration>, now_ms: i64) -> usize {
        let before = self.states.len();
        self.states.retain(|k, s| {
            let Some(h) = horizon(&k.source) else {
                return true;
            };
            let h = i64::try_from(h.as_millis()).unwrap_or(i64::MAX);
            !(s.done && now_ms.saturating_sub(s.touched_ms) > h)
        });
        before - self.states.len()
    }

    pub fn checkpoint(&self) -> Vec<StreamCheckpoint> {
        self.states
            .iter()
            .map(|(k, s)| StreamCheckpoint {
                source: k.source.to_string(),
                stream: k.stream.to_string(),
                cursor: s.cursor.clone(),
                ids: s.recent.to_vec(),
                done: s.done,
                touched_ms: s.touched_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_record_done_and_prune() {
        let (sink, mut inbox) = super::super::channel(super::super::Waker::new(|| {}));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let key = StreamKey::new("s", "d");
        for (id, cursor) in [(1, "10"), (2, "11"), (1, "10")] {
            let line = super::super::lines::RawLine {
                bytes: b"{}".to_vec(),
                truncated: false,
            };
            rt.block_on(sink.send(&key, Some(id), Some(cursor.into()), line))
                .unwrap();
        }
        let mut streams = Streams::default();
        let mut written = Vec::new();
        while let Some(super::super::Msg::Event(item)) = inbox.try_recv() {
            if streams.is_new(&item) {
                streams.record(&item, 5);
                written.push(item.id);
            }
        }
        assert_eq!(written, [Some(1), Some(2)]);
        let cp = streams.checkpoint();
        assert_eq!(cp[0].cursor.as_deref(), Some("11"));
        assert_eq!(cp[0].ids, [1, 2]);
        // Restored, it still knows both ids.
        let again = Streams::restore(cp);
        assert_eq!(again.get(&key).unwrap().recent.to_vec(), [1, 2]);
        streams.mark_done(&key, 100);
        assert!(streams.get(&key).unwrap().recent.to_vec().is_empty());
        let h = |_: &str| Some(Duration::from_millis(50));
        assert_eq!(streams.prune(h, 120), 0);
        assert_eq!(streams.prune(h, 151), 1);
    }

    #[test]
    fn recent_ids_are_bounded_and_ordered() {
        let mut r = RecentIds::default();
        for i in 0..(RECENT_IDS as u64 + 10) {
            assert!(r.insert(i));
        }
        assert!(!r.insert(RECENT_IDS as u64));
        assert!(!r.contains(9) && r.contains(10));
        let v = r.to_vec();
        assert_eq!(v.len(), RECENT_IDS);
        assert_eq!(RecentIds::from_ids(&v), r);
    }
}
