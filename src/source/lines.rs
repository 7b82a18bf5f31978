//! Splitting a chunk of file bytes into lines with bounded memory.
//!
//! The reader never holds more than one chunk: a line longer than
//! [`MAX_LINE`] is emitted cut (flagged `truncated`) and the rest of it is
//! skipped as it streams past (`skipping` carries across chunks and is
//! checkpointed), so even a multi-gigabyte line without a newline costs one
//! chunk of memory. An incomplete last line is not consumed: the caller
//! re-reads it from its start next time, or emits it after an idle timeout.

use crate::event::MAX_MSG_BYTES;

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
