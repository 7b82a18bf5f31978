//! The k-way merge: sources opened in order of their first `ts`, each one's
//! sorted matching events merged through a heap, duplicates dropped, at
//! most `limit` events sent.
//!
//! Invariant: every source not yet opened has `first_ts >=` the `ts` of the
//! next source in line, so the heap's smallest event may be sent as soon as
//! it is smaller than that — nothing unopened can come before it. A source
//! whose metadata understates its span (written by another tool) is still
//! read completely; only its position in the order can then be off.
//!
//! Fetches run ahead of the merge, at most `Reader::concurrency` at once, in
//! the order they will be opened; the receiver's bounded channel is the
//! backpressure (a slow HTTP client slows the query, never grows memory).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::{plan, Snapshot, Source};
use super::{fetch, Filter, QueryError, Reader, Stats};
use crate::event::Event;

type Load = JoinHandle<Result<Vec<Event>, QueryError>>;

/// Aborts fetches still running when the query ends early (limit reached,
/// receiver gone, an error).
struct Ahead(VecDeque<(i64, Load)>);

impl Drop for Ahead {
    fn drop(&mut self) {
        for (_, h) in &self.0 {
            h.abort();
        }
    }
}

/// Run `filter` over `reader` as of `now`, sending events in order to `out`.
/// Returns the local snapshot the query read (for `--follow`).
pub async fn query(
    reader: &Reader,
    filter: &Filter,
    now: i64,
    out: mpsc::Sender<Event>,
    stats: Arc<Stats>,
) -> Result<Snapshot, QueryError> {
    let (sources, snapshot) = plan(reader, filter, now, &stats).await?;
    let mut pending = sources.into_iter();
    let mut ahead = Ahead(VecDeque::new());
    let spawn = |src: Source| {
        let (r, f, st) = (reader.clone(), filter.clone(), stats.clone());
        let first = src.first_ts;
        (
            first,
            tokio::spawn(async move { fetch::load(&r, &src, &f, &st).await }),
        )
    };
    let width = reader.concurrency.max(1);
    let mut runs: Vec<VecDeque<Event>> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(i64, String, u64, usize)>> = BinaryHeap::new();
    let mut last: Option<(i64, String, u64)> = None;
    let limit = filter.limit.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    if limit == 0 {
        return Ok(snapshot);
    }
    loop {
        while ahead.0.len() < width {
            match pending.next() {
                Some(src) => ahead.0.push_back(spawn(src)),
                None => break,
            }
        }
        let open_next = match (heap.peek(), ahead.0.front()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(Reverse(head)), Some((first, _))) => *first <= head.0,
        };
        if open_next {
            let Some((_, handle)) = ahead.0.pop_front() else {
                break;
            };
            let events = handle
                .await
                .map_err(|e| QueryError::Task(e.to_string()))??;
            let mut run = VecDeque::from(events);
            if let Some(e) = run.front() {
                let slot = free_slot(&mut runs);
                heap.push(Reverse((e.ts, e.instance_id.clone(), e.seq, slot)));
                runs[slot] = std::mem::take(&mut run);
            }
            continue;
        }
        let Some(Reverse((ts, inst, seq, slot))) = heap.pop() else {
            break;
        };
        let Some(ev) = runs[slot].pop_front() else {
            continue;
        };
        if let Some(n) = runs[slot].front() {
            heap.push(Reverse((n.ts, n.instance_id.clone(), n.seq, slot)));
        } else {
            runs[slot] = VecDeque::new(); // release the drained run's memory
        }
        let key = (ts, inst, seq);
        if last.as_ref() == Some(&key) {
            continue; // the same event from a local segment and its object
        }
        last = Some(key);
        if out.send(ev).await.is_err() {
            break; // the reader went away
        }
        sent += 1;
        Stats::add(&stats.emitted, 1);
        if sent >= limit {
            break;
        }
    }
    Ok(snapshot)
}

/// An empty slot in `runs` (a drained one, or a new one).
fn free_slot(runs: &mut Vec<VecDeque<Event>>) -> usize {
    if let Some(i) = runs.iter().position(|r| r.is_empty() && r.capacity() == 0) {
        return i;
    }
    runs.push(VecDeque::new());
    runs.len() - 1
}
