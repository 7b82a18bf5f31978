//! NDJSON lines out of a response body that arrives in arbitrary chunks,
//! in bounded memory.
//!
//! A line is buffered up to [`MAX_STREAM_LINE`] (1 MiB). Past that it is
//! *cut*, never buffered further, and what is kept depends on its shape:
//!
//! - a JSON line keeps its whole structure: it is streamed through a
//!   [`Shrinker`] that copies every byte except the inside of over-long
//!   string values, which are cut at a character boundary and marked
//!   `[TRUNCATED]`. Ids, cursors and levels — short fields, wherever they
//!   sit in the object — survive, so a 2 MiB event is still recognised by
//!   its id after a reconnect and is written once, with its timestamp;
//! - anything else keeps its first 1 MiB.
//!
//! Either way the line is flagged `truncated` (the line path marks `msg`)
//! and counted in `logship_truncated_lines_total`.
//!
//! A partial line when the connection ends is discarded: the cursor has not
//! moved past it, so the next request sends it again.

use crate::event::TRUNCATED_SUFFIX;
use crate::ops::metrics::metrics;

/// Longest line kept whole.
pub const MAX_STREAM_LINE: usize = 1024 * 1024;
/// Longest string value a cut JSON line keeps (the most `msg` can hold).
const STRING_CAP: usize = crate::event::MAX_MSG_BYTES;
/// A cut JSON line whose structure alone outgrows this is kept as text.
const STRUCTURE_CAP: usize = 2 * MAX_STREAM_LINE;

/// One complete line (without its `\n` / `\r\n`).
#[derive(Debug, PartialEq, Eq)]
pub struct RawLine {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Splits a byte stream into [`RawLine`]s.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// The current line went over the limit and is JSON: streamed through.
    shrink: Option<Shrinker>,
    /// The current line went over the limit and is not JSON: the rest of
    /// it is skipped.
    skipping: bool,
}

impl Splitter {
    /// Feed one chunk; complete lines are appended to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<RawLine>) {
        while let Some(pos) = memchr::memchr(b'\n', chunk) {
            self.append(&chunk[..pos]);
            out.push(self.finish());
            chunk = &chunk[pos + 1..];
        }
        self.append(chunk);
    }

    /// Bytes of an unfinished line are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.shrink.is_some() || self.skipping
    }

    /// Forget an unfinished line (the connection ended).
    pub fn reset(&mut self) {
        *self = Splitter::default();
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Some(s) = &mut self.shrink {
            s.feed(bytes);
            return;
        }
        if self.skipping {
            return;
        }
        let room = MAX_STREAM_LINE - self.buf.len();
        if bytes.len() <= room {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.buf.extend_from_slice(&bytes[..room]);
        let rest = &bytes[room..];
        if self.buf.trim_ascii_start().starts_with(b"{") {
            let mut s = Shrinker::default();
            s.feed(&self.buf);
            s.feed(rest);
            self.buf = Vec::new();
            self.shrink = Some(s);
        } else {
            self.skipping = true;
        }
    }

    fn finish(&mut self) -> RawLine {
        let cut = self.shrink.is_some() || self.skipping;
        let mut bytes = match self.shrink.take() {
            Some(s) => s.finish(),
            None => std::mem::take(&mut self.buf),
        };
        self.skipping = false;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if cut {
            metrics().truncated_lines.inc();
        }
        RawLine {
            bytes,
            truncated: cut,
        }
    }
}

/// Copies JSON text, cutting over-long string values (see the module doc).
/// It does not validate: invalid JSON stays invalid and is then read as text.
#[derive(Debug, Default)]
struct Shrinker {
    out: Vec<u8>,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
    /// Hex digits of a `\uXXXX` escape still to come.
    hex_left: u8,
    /// Bytes of the current string value copied so far.
    string_len: usize,
    /// The current string is past its cap: bytes are dropped until it ends.
    cutting: bool,
    /// The structure alone outgrew [`STRUCTURE_CAP`]: nothing more is kept.
    overflow: bool,
}

impl Shrinker {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.overflow {
                return;
            }
            if !self.in_string {
                self.out.push(b);
                if b == b'"' {
                    self.in_string = true;
                    self.string_len = 0;
                    self.cutting = false;
                }
                if self.out.len() > STRUCTURE_CAP {
                    self.overflow = true;
                }
                continue;
            }
            self.string_byte(b);
        }
    }

    fn string_byte(&mut self, b: u8) {
        let mid_char = self.escaped || self.hex_left > 0 || (0x80..0xC0).contains(&b);
        if b == b'"' && !self.escaped {
            self.in_string = false;
            self.out.push(b);
            return;
        }
        if self.escaped {
            self.escaped = false;
            if b == b'u' {
                self.hex_left = 4;
            }
        } else if self.hex_left > 0 {
            self.hex_left -= 1;
        } else if b == b'\\' {
            self.escaped = true;
        }
        if self.cutting {
            return;
        }
        if !mid_char && self.string_len >= STRING_CAP {
            // At a character boundary, outside any escape: cut here.
            // Escapes are still tracked (above) while cutting, so an
            // escaped quote never ends the string early.
            self.cutting = true;
            self.out.extend_from_slice(TRUNCATED_SUFFIX.as_bytes());
            return;
        }
        self.out.push(b);
        self.string_len += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.overflow {
            let mut end = MAX_STREAM_LINE.min(self.out.len());
            while end > 0 && self.out.get(end).is_some_and(|b| (0x80..0xC0).contains(b)) {
                end -= 1;
            }
            self.out.truncate(end);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<RawLine> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out
    }

    #[test]
    fn lines_across_chunks_and_crlf() {
        let out = split(&[b"{\"a\":1}\n{\"b\"", b":2}\r\n", b"tail"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bytes, b"{\"a\":1}");
        assert_eq!(out[1].bytes, b"{\"b\":2}");
        assert!(!out[1].truncated);
    }

    #[test]
    fn a_huge_json_line_keeps_its_ids_and_stays_valid() {
        let text = "é\\\"x".repeat(700_000); // ~3.5 MiB of string, escapes inside
        let line = format!("{{\"text\":\"{text}\",\"id\":\"evt-9\",\"created\":5}}\n");
        let chunks: Vec<&[u8]> = line.as_bytes().chunks(4093).collect();
        let out = split(&chunks);
        assert_eq!(out.len(), 1);
        assert!(out[0].truncated);
        assert!(out[0].bytes.len() <= STRING_CAP + 100);
        let v: serde_json::Value = serde_json::from_slice(&out[0].bytes).unwrap();
        assert_eq!(v["id"], "evt-9");
        assert_eq!(v["created"], 5);
        assert!(v["text"].as_str().unwrap().ends_with(TRUNCATED_SUFFIX));
    }

    #[test]
    fn a_huge_text_line_keeps_its_head() {
        let line = vec![b'x'; 3 * MAX_STREAM_LINE];
        let out = split(&[&line, b"\nok\n"]);
        assert_eq!(out[0].bytes.len(), MAX_STREAM_LINE);
        assert!(out[0].truncated);
        assert_eq!(out[1].bytes, b"ok");
    }

    #[test]
    fn unicode_escapes_are_never_split() {
        let text = "\\u00e9".repeat(STRING_CAP);
        let line = format!("{{\"t\":\"{text}\"}}\n");
        let out = split(&[line.as_bytes()]);
        let v: serde_json::Value = serde_json::from_slice(&out[0].bytes).unwrap();
        assert!(v["t"].as_str().unwrap().ends_with(TRUNCATED_SUFFIX));
    }
}
