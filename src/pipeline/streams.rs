//! The pipeline's side of event-stream sources (SPEC §11): lines queued by
//! the HTTP tasks go through the same line path as file lines, once each.
//!
//! Per event, in this order, on the pipeline thread: drop it if its id is
//! among the stream's recent ids; normalize, redact, append; then record
//! its id and cursor. The next commit stores those with the segment
//! lengths, so what a commit says was written is what the segments hold —
//! the same argument as for a file offset (`checkpoint.rs`).

use prometheus_client::metrics::counter::Counter;

use super::line::{LinePath, Stream};
use super::{now_ms, Pipeline, Sink};
use crate::alert::AlertBatch;
use crate::config::stream::{specs, StreamKind};
use crate::event::{Event, Tier};
use crate::ops::metrics::{metrics, SourceLabel};
use crate::redact::StreamState;
use crate::source::stream::{self, Item, Msg};
use crate::source::tailer::Line;

/// Queued messages handled per loop turn (the rest wait for the next).
const BATCH: usize = 4096;

impl Pipeline {
    /// Start the HTTP side of every stream source, from the committed
    /// positions.
    pub(super) fn start_streams(&mut self, link: &stream::Link) {
        let wake = self.wake.clone();
        let waker = stream::Waker::new(move || {
            // Fails only once the pipeline is gone.
            let _ = wake.send(crate::source::watch::Change::Wake);
        });
        self.inbox = stream::start(link, specs(&self.cfg.sources), &self.streams, waker);
    }

    /// Write what the stream tasks queued, within the disk budget.
    pub(super) fn read_streams(&mut self) -> anyhow::Result<()> {
        let Some(inbox) = self.inbox.as_mut() else {
            return Ok(());
        };
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match inbox.try_recv() {
                Some(m) => batch.push(m),
                None => break,
            }
        }
        // While lines keep coming the loop does not wait for file events
        // (up to 100 ms a turn): the queue would cap the stream's rate.
        self.streams_behind = !batch.is_empty();
        let wall = now_ms();
        let mut ev = Event::empty(Tier::Deploy);
        // One alert batch for the turn, as for a file's read pass: handed
        // to the engine when the turn ends (or fills it), not per event.
        let mut alerts = self.alerts.batch();
        let mut counted: Option<(std::sync::Arc<str>, Counter)> = None;
        for msg in batch {
            match msg {
                Msg::Event(item) => {
                    if !self.streams.is_new(&item) {
                        continue;
                    }
                    self.write_stream_event(&item, wall, &mut ev, &mut alerts)?;
                    self.streams.record(&item, wall);
                    self.changed = true;
                    let c = match &counted {
                        Some((src, c)) if *src == item.key.source => c,
                        _ => &counted.insert((item.key.source.clone(), counter(&item))).1,
                    };
                    c.inc();
                }
                Msg::Done(key) => {
                    self.streams.mark_done(&key, wall);
                    self.changed = true;
                    if let Some(src) = self.source_of(&key.source) {
                        let tier = self.cfg.sources[src].tier;
                        if !key.stream.is_empty() && matches!(tier, Tier::Build | Tier::Deploy) {
                            // A finished deployment: its segment is complete.
                            self.segments.seal_build(&key.stream, &[tier]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn write_stream_event(
        &mut self,
        item: &Item,
        wall: i64,
        ev: &mut Event,
        alerts: &mut AlertBatch,
    ) -> anyhow::Result<()> {
        // A source removed by a reload: restart-only, so this cannot happen.
        let Some(idx) = self.source_of(&item.key.source) else {
            return Ok(());
        };
        let path = LinePath {
            normalizer: &self.normalizers[idx],
            redactor: &self.redactor,
        };
        // Each event is complete in itself: no redaction state spans two.
        let mut redact = StreamState::default();
        let line = Line {
            bytes: &item.line,
            truncated: item.truncated,
            at: 0,
        };
        let stream = Stream {
            path_ids: &[],
            redact: &mut redact,
        };
        path.event(line, stream, wall, &mut self.seq_next, ev);
        // The same write as for file lines.
        let mut sink = Sink {
            segments: &mut self.segments,
            scratch: &mut self.scratch,
            written: &mut self.written,
            tap: &mut self.tap,
            alerts: alerts.take(),
            wall,
            failed: None,
        };
        sink.write(ev);
        *alerts = sink.alerts.take();
        // Crash-only, as for files: stop without committing.
        super::write_result(sink.failed)
    }

    fn source_of(&self, name: &str) -> Option<usize> {
        self.cfg
            .sources
            .iter()
            .position(|s| s.name.get_ref() == name)
    }

    /// Forget finished Vercel deployments older than their `lookback`.
    pub(super) fn prune_streams(&mut self) -> usize {
        let specs = specs(&self.cfg.sources);
        let horizon = |source: &str| {
            specs
                .iter()
                .find(|s| s.name == source)
                .and_then(|s| match s.kind {
                    // A margin past lookback: the listing's clock may differ.
                    StreamKind::Vercel { lookback, .. } => {
                        Some(lookback + std::time::Duration::from_secs(3600))
                    }
                    StreamKind::HttpNdjson { .. } => None,
                })
        };
        self.streams.prune(horizon, now_ms())
    }
}

fn counter(item: &Item) -> Counter {
    metrics()
        .stream_events
        .get_or_create(&SourceLabel {
            source: item.key.source.to_string(),
        })
        .clone()
}
