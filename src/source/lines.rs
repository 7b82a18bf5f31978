//! Splitting a chunk of file bytes into lines with bounded memory.
//!
//! The reader never holds more than one chunk: a line longer than
//! [`MAX_LINE`] is emitted cut (flagged `truncated`) and the rest of it is
//! skipped as it streams past (`skipping` carries across chunks and is
//! checkpointed), so even a multi-gigabyte line without a newline costs one
//! chunk of memory. An incomplete last line is not consumed: the caller
//! re-reads it from its start next time, or emits it after an idle timeout.

use std::io::{self, Read};

use crate::event::MAX_MSG_BYTES;
use crate::source::tailer::{Line, CHUNK};

/// Longest line emitted whole; longer ones are cut to this.
pub const MAX_LINE: usize = MAX_MSG_BYTES;

/// One line inside a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRef {
    pub start: usize,
    pub end: usize,
    /// The line was longer than [`MAX_LINE`] and was cut.
    pub truncated: bool,
    /// Offset in the chunk just after this line (and its newline).
    pub next: usize,
}

/// Result of splitting one chunk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Bytes of the chunk consumed (complete lines and skipped bytes).
    pub consumed: usize,
    /// Still inside an over-long line at the end of the chunk.
    pub skipping: bool,
    /// Bytes of an incomplete last line left unconsumed.
    pub partial: usize,
}

/// Split `chunk` into lines. `skipping` says the chunk starts inside an
/// over-long line whose head was already emitted.
pub fn split(chunk: &[u8], skipping: bool, out: &mut Vec<LineRef>) -> Split {
    out.clear();
    let mut pos = 0;
    if skipping {
        match memchr::memchr(b'\n', chunk) {
            Some(i) => pos = i + 1,
            None => {
                return Split {
                    consumed: chunk.len(),
                    skipping: true,
                    partial: 0,
                }
            }
        }
    }
    while let Some(i) = memchr::memchr(b'\n', &chunk[pos..]) {
        let mut end = pos + i;
        if end > pos && chunk[end - 1] == b'\r' {
            end -= 1;
        }
        let truncated = end - pos > MAX_LINE;
        out.push(LineRef {
            start: pos,
            end: if truncated { pos + MAX_LINE } else { end },
            truncated,
            next: pos + i + 1,
        });
        pos += i + 1;
    }
    let rest = chunk.len() - pos;
    if rest > MAX_LINE {
        out.push(LineRef {
            start: pos,
            end: pos + MAX_LINE,
            truncated: true,
            next: chunk.len(),
        });
        return Split {
            consumed: chunk.len(),
            skipping: true,
            partial: 0,
        };
    }
    Split {
        consumed: pos,
        skipping: false,
        partial: rest,
    }
}

/// Read `input` to its end and hand out its lines as the tailer does for a
/// file: split by [`split`] (so cut and flagged at [`MAX_LINE`]), with one
/// chunk of memory, and a last line without a newline emitted as it is (as
/// the tailer does once such a line has waited long enough). Lines are
/// handed out as soon as they are read, so a pipe is processed as it flows.
pub fn read_all(
    input: &mut dyn Read,
    emit: &mut dyn FnMut(Line<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut refs = Vec::new();
    let (mut filled, mut skipping) = (0, false);
    // Offset of `buf[0]` in the input.
    let mut base = 0u64;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        let s = split(&buf[..filled], skipping, &mut refs);
        for r in &refs {
            emit(Line {
                bytes: &buf[r.start..r.end],
                truncated: r.truncated,
                at: base + r.start as u64,
            })?;
        }
        skipping = s.skipping;
        if n == 0 {
            if s.partial > 0 {
                emit(Line {
                    bytes: &buf[s.consumed..filled],
                    truncated: false,
                    at: base + s.consumed as u64,
                })?;
            }
            return Ok(());
        }
        buf.copy_within(s.consumed..filled, 0);
        filled -= s.consumed;
        base += s.consumed as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines<'a>(chunk: &'a [u8], refs: &[LineRef]) -> Vec<&'a [u8]> {
        refs.iter().map(|r| &chunk[r.start..r.end]).collect()
    }

    #[test]
    fn complete_and_partial() {
        let mut out = Vec::new();
        let c = b"a\nbb\r\nccc";
        let s = split(c, false, &mut out);
        assert_eq!(lines(c, &out), vec![&b"a"[..], b"bb"]);
        assert_eq!(
            s,
            Split {
                consumed: 6,
                skipping: false,
                partial: 3
            }
        );
    }

    #[test]
    fn read_all_cuts_like_split_and_keeps_the_last_line() {
        let mut input = vec![b'x'; 3 * MAX_LINE];
        input.extend_from_slice(b"\nshort\r\nlast\r");
        // A reader that returns a few bytes at a time: lines span reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(self.0.len()).min(70_001);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut got = Vec::new();
        read_all(&mut Trickle(&input), &mut |l| {
            got.push((l.bytes.to_vec(), l.truncated));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (vec![b'x'; MAX_LINE], true));
        assert_eq!(got[1], (b"short".to_vec(), false));
        assert_eq!(got[2], (b"last\r".to_vec(), false));
    }

    #[test]
    fn long_line_is_cut_then_skipped() {
        let mut out = Vec::new();
        let mut c = vec![b'x'; MAX_LINE + 10];
        c.push(b'\n');
        c.extend_from_slice(b"next\n");
        let s = split(&c, false, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].truncated);
        assert_eq!(out[0].end - out[0].start, MAX_LINE);
        assert_eq!(lines(&c, &out)[1], b"next");
        assert_eq!(s.consumed, c.len());

        // Without a newline in the chunk: cut, and keep skipping.
        let c = vec![b'y'; MAX_LINE + 1];
        let s = split(&c, false, &mut out);
        assert!(s.skipping && out.len() == 1 && out[0].truncated);
        let s = split(b"yyyy", true, &mut out);
        assert!(s.skipping && out.is_empty() && s.consumed == 4);
        let s = split(b"yy\nz\n", true, &mut out);
        assert!(!s.skipping);
        assert_eq!(lines(b"yy\nz\n", &out), vec![&b"z"[..]]);
    }
}
