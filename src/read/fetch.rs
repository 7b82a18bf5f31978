//! Reading one source: a bucket object (gunzipped as its bytes arrive) or a
//! local segment file, keeping the events that pass the filter, sorted.
//!
//! Decompression and JSON parsing are CPU work, so they run on the blocking
//! pool; the object's body is pulled from the async side through
//! `SyncIoBridge` a buffer at a time, so no object is ever held compressed
//! or whole in memory — only its matching events are. Lines are read with a
//! cap ([`MAX_LINE`]): a hostile object cannot make a line grow without
//! bound. Two cheap checks run before the full parse: the `ts` prefix
//! against the window, and `grep` against the message alone.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use serde::Deserialize;
use tokio_util::io::SyncIoBridge;

use super::plan::{Origin, Source};
use super::retry;
use super::{Filter, QueryError, Reader, Stats};
use crate::event::Event;

/// Longest line read; longer ones are skipped and counted. An event's
/// `msg` is at most 256 KiB, but `data` and escaping add to it.
pub const MAX_LINE: usize = 4 << 20;

/// How one line ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineEnd {
    /// Bytes consumed, the newline included.
    pub consumed: usize,
    /// It ended with `\n` (a local segment's last line may still be
    /// being written).
    pub terminated: bool,
    /// It was longer than the cap; `line` holds only its start.
    pub too_long: bool,
}

/// Read the next line into `line` (without its `\n`), keeping at most
/// `cap` bytes; `None` at the end of input.
pub fn next_line<R: BufRead>(
    r: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<LineEnd>> {
    line.clear();
    let mut end = LineEnd {
        consumed: 0,
        terminated: false,
        too_long: false,
    };
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((end.consumed > 0).then_some(end));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        if take > room {
            end.too_long = true;
        }
        line.extend_from_slice(&buf[..take.min(room)]);
        let used = if done { take + 1 } else { take };
        r.consume(used);
        end.consumed += used;
        if done {
            end.terminated = true;
            return Ok(Some(end));
        }
    }
}

/// The matching events of `src`, sorted by `(ts, instanceId, seq)`.
pub async fn load(
    reader: &Reader,
    src: &Source,
    filter: &Filter,
    stats: &Arc<Stats>,
) -> Result<Vec<Event>, QueryError> {
    match &src.origin {
        Origin::Object(key) => {
            // A body cut mid-transfer: fetch the object again from its
            // start (its partial events are dropped, not kept twice).
            let transient = |e: &QueryError| matches!(e, QueryError::Transfer { .. });
            retry::with_retries(key, transient, || load_object(reader, key, filter, stats)).await
        }
        Origin::Local { path, len } => {
            Stats::add(&stats.fetched, 1);
            let (path, len, f, st) = (path.clone(), *len, filter.clone(), stats.clone());
            blocking(move || {
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    // Removed by retention since planning: its events are in the bucket.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(io_err(&path, e)),
                };
                scan(
                    BufReader::with_capacity(256 * 1024, file.take(len)),
                    &f,
                    &st,
                    false,
                )
                .map_err(|e| match e {
                    QueryError::Io { source, .. } => io_err(&path, source),
                    other => other,
                })
            })
            .await
        }
    }
}

/// One GET of `key`, filtered as it streams. A failure of the transfer
/// itself (seen below the gzip decoder, so not a corrupt object) is a
/// [`QueryError::Transfer`]; a corrupt object keeps what was read.
async fn load_object(
    reader: &Reader,
    key: &str,
    filter: &Filter,
    stats: &Arc<Stats>,
) -> Result<Vec<Event>, QueryError> {
    Stats::add(&stats.requests, 1);
    let Some((_info, body)) = reader.bucket.get(key).await? else {
        return Ok(Vec::new());
    };
    Stats::add(&stats.fetched, 1);
    let bridge = SyncIoBridge::new(body);
    let (f, st) = (filter.clone(), stats.clone());
    let failed: Arc<std::sync::Mutex<Option<io::Error>>> = Arc::default();
    let seen = failed.clone();
    let events = blocking(move || {
        let counted = Counting {
            inner: bridge,
            stats: st.clone(),
            failed: seen,
        };
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, counted));
        scan(BufReader::with_capacity(256 * 1024, gz), &f, &st, true)
    })
    .await?;
    let cut = failed.lock().map(|mut e| e.take()).unwrap_or(None);
    match cut {
        Some(source) => Err(QueryError::Transfer {
            key: key.to_string(),
            source,
        }),
        None => Ok(events),
    }
}

fn io_err(path: &std::path::Path, source: io::Error) -> QueryError {
    QueryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| QueryError::Task(e.to_string()))?
}

/// Counts compressed bytes as they are read, and keeps the first error of
/// the transfer: it sits right on the body, so any error it sees is the
/// connection's, never the decoder's.
struct Counting<R> {
    inner: R,
    stats: Arc<Stats>,
    failed: Arc<std::sync::Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                Stats::add(&self.stats.bytes_read, n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                if let Ok(mut slot) = self.failed.lock() {
                    slot.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Just the message, borrowed where it needs no unescaping.
#[derive(Deserialize)]
struct MsgOnly<'a> {
    #[serde(borrow)]
    msg: Cow<'a, str>,
}

/// Filter the lines of `r` into sorted events. An unterminated last line
/// counts only in an object (sealed, so complete); in a local segment it
/// may be half written and belongs to the next read.
fn scan<R: BufRead>(
    mut r: R,
    filter: &Filter,
    stats: &Stats,
    last_line_complete: bool,
) -> Result<Vec<Event>, QueryError> {
    let mut out: Vec<Event> = Vec::new();
    let mut sorted = true;
    let mut line = Vec::new();
    let (mut bad, mut scanned) = (0u64, 0u64);
    loop {
        let end = match next_line(&mut r, &mut line, MAX_LINE) {
            Ok(Some(end)) => end,
            Ok(None) => break,
            Err(e) => {
                // A corrupt object: keep what was read, say so. (A cut
                // transfer is seen by `Counting` and retried by the caller.)
                tracing::warn!(error = %e, "stopped reading a source early");
                bad += 1;
                break;
            }
        };
        scanned += end.consumed as u64;
        if end.too_long {
            bad += 1;
            continue;
        }
        if (!end.terminated && !last_line_complete) || line.is_empty() {
            continue;
        }
        match keep(&line, filter) {
            Ok(Some(e)) => {
                if out.last().is_some_and(|l| order_key(l) > order_key(&e)) {
                    sorted = false;
                }
                out.push(e);
            }
            Ok(None) => {}
            Err(()) => bad += 1,
        }
    }
    Stats::add(&stats.bad_lines, bad);
    Stats::add(&stats.bytes_scanned, scanned);
    if !sorted {
        out.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    }
    Ok(out)
}

/// The event of `line` if it passes the filter; `Err` for a line that is
/// not an event.
fn keep(line: &[u8], filter: &Filter) -> Result<Option<Event>, ()> {
    if let Some(ts) = super::plan::leading_ts(line) {
        if ts < filter.since || ts >= filter.until {
            return Ok(None);
        }
    }
    let text = std::str::from_utf8(line).map_err(|_| ())?;
    if let Some(re) = &filter.grep {
        let m: MsgOnly<'_> = serde_json::from_str(text).map_err(|_| ())?;
        if !re.is_match(&m.msg) {
            return Ok(None);
        }
    }
    let e = Event::from_json(text).map_err(|_| ())?;
    Ok(filter.keep(&e).then_some(e))
}

/// The order of SPEC §1: `(ts, instanceId, seq)`.
pub fn order_key(e: &Event) -> (i64, &str, u64) {
    (e.ts, e.instance_id.as_str(), e.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::FilterParams;

    #[test]
    fn lines_are_capped_and_partial_ends_reported() {
        let mut r = io::Cursor::new(b"abc\ndefghij\nxy".to_vec());
        let mut line = Vec::new();
        let e = next_line(&mut r, &mut line, 4).unwrap().unwrap();
        assert_eq!(
            (line.as_slice(), e.terminated, e.too_long, e.consumed),
            (&b"abc"[..], true, false, 4)
        );
        let e = next_line(&mut r, &mut line, 4).unwrap().unwrap();
        assert_eq!(
            (line.as_slice(), e.too_long, e.consumed),
            (&b"defg"[..], true, 8)
        );
        let e = next_line(&mut r, &mut line, 4).unwrap().unwrap();
        assert_eq!((line.as_slice(), e.terminated), (&b"xy"[..], false));
        assert!(next_line(&mut r, &mut line, 4).unwrap().is_none());
    }

    #[test]
    fn scan_filters_sorts_and_counts_bad_lines() {
        let p = FilterParams {
            tier: Some("system".into()),
            since: Some("10".into()),
            grep: Some("keep".into()),
            ..Default::default()
        };
        let f = Filter::parse_query(&p, 1000).unwrap();
        let mk = |ts: i64, seq: u64, msg: &str| {
            let mut e = Event::empty(crate::event::Tier::System);
            (e.ts, e.seq, e.msg, e.instance_id) = (ts, seq, msg.into(), "h".into());
            e.to_json() + "\n"
        };
        let text = format!(
            "{}{}not json\n{}{}",
            mk(30, 1, "keep a"),
            mk(20, 2, "keep b"),
            mk(5, 3, "keep c"),
            mk(40, 4, "drop")
        );
        let st = Stats::default();
        let got = scan(io::Cursor::new(text.into_bytes()), &f, &st, true).unwrap();
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(Stats::get(&st.bad_lines), 1);
    }
}
