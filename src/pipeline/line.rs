//! The line path: one raw line of a stream to one unified event.
//!
//! This is the only place that knows the order of the per-line steps, so the
//! agent (`Pipeline::read`) and `logship normalize` cannot drift apart:
//!
//! 1. bytes to text — invalid UTF-8 becomes U+FFFD and is counted;
//! 2. normalize (format detection, level, time, ids);
//! 3. a line the reader cut at [`MAX_LINE`](crate::source::lines::MAX_LINE)
//!    is marked `[TRUNCATED]` (once);
//! 4. redact `msg` with the stream's own state (an open PEM block spans
//!    lines), then deep-redact `data`;
//! 5. cut `msg` to [`MAX_MSG_BYTES`](crate::event::MAX_MSG_BYTES): redaction
//!    markers can make it longer than the line was;
//! 6. assign the next `seq`, unless the line is a unified event carrying its
//!    own.
//!
//! Cost: it fills a caller-owned [`Event`] and borrows the line's bytes, so
//! a valid UTF-8 line allocates nothing here beyond what normalizing and
//! redacting need.

use std::borrow::Cow;

use crate::event::{truncate_msg, Event, IdField, TRUNCATED_SUFFIX};
use crate::normalize::{formats, Normalizer, Supplied};
use crate::ops::metrics::metrics;
use crate::redact::{Redactor, StreamState};
use crate::source::tailer::Line;

/// What a line's stream contributes beyond the line itself.
#[derive(Debug)]
pub struct Stream<'a> {
    /// Ids captured from the file's path template.
    pub path_ids: &'a [(IdField, String)],
    /// The stream's redaction state (part of its checkpoint).
    pub redact: &'a mut StreamState,
}

/// The per-source steps of the line path: one normalizer and the redactor.
#[derive(Clone, Copy, Debug)]
pub struct LinePath<'a> {
    pub normalizer: &'a Normalizer,
    pub redactor: &'a Redactor,
}

impl LinePath<'_> {
    /// Turn `line` into `ev`, read at `now_ms`; a `seq` taken from
    /// `next_seq` advances it.
    pub fn event(
        &self,
        line: Line<'_>,
        stream: Stream<'_>,
        now_ms: i64,
        next_seq: &mut u64,
        ev: &mut Event,
    ) {
        let text = text(line.bytes);
        let supplied = self.begin(&text, line.truncated, None, stream, now_ms, ev);
        finish(supplied, next_seq, ev);
    }

    /// Steps 2–4 for the first (or only) line of a record: normalize,
    /// mark a cut line, redact. `container` is the stream and runtime
    /// timestamp of an unwrapped container line: the stream becomes `src`,
    /// and the timestamp stands in for the read time. [`finish`] completes
    /// the event.
    pub fn begin(
        &self,
        text: &str,
        truncated: bool,
        container: Option<(formats::Stream, Option<i64>)>,
        stream: Stream<'_>,
        now_ms: i64,
        ev: &mut Event,
    ) -> Supplied {
        let now_ms = container.and_then(|(_, ts)| ts).unwrap_or(now_ms);
        let supplied = self.normalizer.normalize(text, now_ms, stream.path_ids, ev);
        if let Some((s, _)) = container {
            ev.src.clear();
            ev.src.push_str(s.as_str());
        }
        if truncated && !ev.msg.ends_with(TRUNCATED_SUFFIX) {
            ev.msg.push_str(TRUNCATED_SUFFIX);
        }
        self.redactor.redact_msg(stream.redact, &mut ev.msg);
        if let Some(data) = ev.data.as_mut() {
            self.redactor.redact_data(data);
        }
        supplied
    }

    /// Redact one continuation line of a record in place (with the
    /// stream's state, in file order, as `logship redact` would).
    pub fn redact_line(&self, redact: &mut StreamState, text: &mut String) {
        self.redactor.redact_msg(redact, text);
    }
}

/// Bytes to text: invalid UTF-8 becomes U+FFFD and is counted.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            metrics().invalid_utf8_lines.inc();
            String::from_utf8_lossy(bytes)
        }
    }
}

/// Steps 5–6: cut `msg` to [`MAX_MSG_BYTES`](crate::event::MAX_MSG_BYTES)
/// and assign the next `seq` unless the line carried its own.
pub fn finish(supplied: Supplied, next_seq: &mut u64, ev: &mut Event) {
    truncate_msg(&mut ev.msg);
    if !supplied.seq {
        ev.seq = *next_seq;
        *next_seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::{Tier, MAX_MSG_BYTES};
    use crate::redact::RedactionConfig;

    fn run(lines: &[Line<'_>]) -> Vec<Event> {
        let normalizer = Normalizer::plain("app", Tier::System, Format::Auto, "h");
        let redactor = Redactor::new(&RedactionConfig::default()).unwrap();
        let path = LinePath {
            normalizer: &normalizer,
            redactor: &redactor,
        };
        let mut state = StreamState::default();
        let mut seq = 10;
        let mut out = Vec::new();
        for &line in lines {
            let mut ev = Event::empty(Tier::System);
            let stream = Stream {
                path_ids: &[],
                redact: &mut state,
            };
            path.event(line, stream, 1, &mut seq, &mut ev);
            out.push(ev);
        }
        out
    }

    fn raw(bytes: &[u8]) -> Line<'_> {
        Line {
            bytes,
            truncated: false,
            at: 0,
        }
    }

    #[test]
    fn steps_in_order() {
        let long = vec![b'x'; MAX_MSG_BYTES];
        let evs = run(&[
            raw(b"bad \xff byte"),
            Line {
                bytes: &long,
                truncated: true,
                at: 0,
            },
            raw(b"-----BEGIN RSA PRIVATE KEY-----"),
            raw(b"MIIEowIBAAKCAQEAvSECRETSECRETSECRETSECRET"),
            raw(br#"{"msg":"m","seq":3,"tier":"system"}"#),
            raw(b"after"),
        ]);
        assert_eq!(evs[0].msg, "bad \u{fffd} byte");
        assert!(evs[1].msg.ends_with(TRUNCATED_SUFFIX));
        assert_eq!(evs[1].msg.len(), MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
        assert!(!evs[3].msg.contains("SECRET"), "{}", evs[3].msg);
        let seqs: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [10, 11, 12, 13, 3, 14]);
    }
}
