//! PEM private-key blocks: a per-stream state machine.
//!
//! A private key is logged as many lines (`-----BEGIN RSA PRIVATE KEY-----`,
//! base64 body lines, `-----END ...-----`), and a line-at-a-time redactor sees
//! only one of them; the body lines alone look like nothing in particular.
//! So the state "inside a private-key block" lives in [`StreamState`], one per
//! tailed file, and every line until the END line is redacted.
//!
//! Where a block can appear:
//! - one per line, possibly after a logger prefix (`2024-... ERROR app: `),
//!   which is kept: on a body line the redaction starts at the first long
//!   base64 run (or, if there is none, the last whitespace-separated token);
//! - inside one message with real newlines (a decoded JSON string), where the
//!   whole block becomes one marker when its END is in the same message;
//! - inside one raw JSON line with literal `\n` escapes, which is the same case
//!   without real newlines.
//!
//! A block whose END never comes is redacted for at most [`MAX_LINES`] lines
//! or [`MAX_BYTES`] bytes; then the stream resumes normally and the event is
//! counted as `pem_unterminated`, so a truncated key cannot blank a log
//! forever. A BEGIN of a certificate or public key inside an open block ends
//! it the same way. Certificates and public keys are never redacted.
//!
//! Invariant: every byte of a private-key body line is inside a returned span.

/// Body lines redacted after a BEGIN without END before giving up.
pub const MAX_LINES: u32 = 200;
/// Body bytes redacted after a BEGIN without END before giving up.
pub const MAX_BYTES: usize = 64 * 1024;

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";
/// A base64 run at least this long on a body line is key material; shorter
/// runs may be a logger prefix (timestamps and levels are broken up by
/// punctuation).
const LONG_RUN: usize = 16;

/// Per-stream redaction state (one per tailed file); never shared. It is
/// part of the file's checkpoint: after a crash in the middle of a key block
/// the agent resumes inside the block, so the rest of the key stays hidden.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StreamState {
    block: Option<Open>,
}

impl StreamState {
    /// True while a private-key block is open on this stream.
    pub fn in_private_key(&self) -> bool {
        self.block.is_some()
    }

    /// The open block as `(lines, bytes)` redacted since its BEGIN, for the
    /// checkpoint.
    pub fn open_block(&self) -> Option<(u32, usize)> {
        self.block.as_ref().map(|b| (b.lines, b.bytes))
    }

    /// The state [`open_block`](Self::open_block) described.
    pub fn with_open_block(block: Option<(u32, usize)>) -> StreamState {
        StreamState {
            block: block.map(|(lines, bytes)| Open { lines, bytes }),
        }
    }
}

/// An open block: how much has been redacted since its BEGIN.
#[derive(Debug, Default, Clone, PartialEq)]
struct Open {
    lines: u32,
    bytes: usize,
}

/// What one scan found: byte ranges to replace, and how many blocks were
/// abandoned without an END.
#[derive(Debug, Default)]
pub struct Found {
    pub spans: Vec<(usize, usize)>,
    pub unterminated: usize,
}

/// Where to continue after one segment of a line.
enum Next {
    /// The rest of the current line is done.
    Line,
    /// Continue at this byte offset (after an END, or at a BEGIN).
    At(usize),
}

/// Scan `text` (one message; it may contain real newlines), updating `state`.
pub fn scan(state: &mut StreamState, text: &str, found: &mut Found) {
    let mut pos = 0;
    let mut fresh_line = true;
    loop {
        let le = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        if fresh_line {
            if let Some(open) = state.block.as_mut() {
                open.lines += 1;
                open.bytes += le - pos;
                if open.lines > MAX_LINES || open.bytes > MAX_BYTES {
                    state.block = None;
                    found.unterminated += 1;
                }
            }
        }
        let next = if state.block.is_some() {
            in_block(state, text, pos, le, found)
        } else {
            outside(state, text, pos, le, found)
        };
        match next {
            Next::At(p) => {
                pos = p;
                fresh_line = false;
            }
            Next::Line if le >= text.len() => return,
            Next::Line => {
                pos = le + 1;
                fresh_line = true;
            }
        }
    }
}

/// Normal mode: look for a private-key BEGIN in `text[pos..le]`.
fn outside(state: &mut StreamState, text: &str, pos: usize, le: usize, found: &mut Found) -> Next {
    let mut from = pos;
    while let Some(i) = text[from..le].find(BEGIN) {
        let b = from + i;
        let Some((header_end, private)) = header(text, b, le) else {
            from = b + BEGIN.len();
            continue;
        };
        if !private {
            from = header_end;
            continue;
        }
        return match text[header_end..].find(END) {
            Some(j) => {
                let e = header_end + j;
                let close = marker_end(text, e);
                found.spans.push((b, close));
                Next::At(close)
            }
            None => {
                found.spans.push((b, trim_end(text, b, le)));
                state.block = Some(Open::default());
                Next::Line
            }
        };
    }
    Next::Line
}

/// Inside a block: redact body text up to an END (which closes the block) or
/// a BEGIN (which ends it; the BEGIN is then looked at in normal mode).
fn in_block(state: &mut StreamState, text: &str, pos: usize, le: usize, found: &mut Found) -> Next {
    let seg = &text[pos..le];
    let end = seg.find(END).map(|i| pos + i);
    let begin = seg.find(BEGIN).map(|i| pos + i);
    match (end, begin) {
        (Some(e), b) if b.is_none_or(|b| e < b) => {
            let close = marker_end(text, e).min(le.max(e));
            let start = body_start(text, pos, e);
            found.spans.push((start, close.max(start)));
            state.block = None;
            Next::At(close.max(pos + 1).min(text.len()))
        }
        (_, Some(b)) => {
            if let Some(span) = body_span(text, pos, b) {
                found.spans.push(span);
            }
            state.block = None;
            if !header(text, b, le).is_some_and(|(_, private)| private) {
                found.unterminated += 1;
            }
            // `outside` makes progress at `b` (it redacts a private BEGIN or
            // skips a public one), so this cannot loop.
            Next::At(b)
        }
        _ => {
            if let Some(span) = body_span(text, pos, le) {
                found.spans.push(span);
            }
            Next::Line
        }
    }
}

/// Parse the header at `b` (which starts with `-----BEGIN `): its end and
/// whether it names a private key.
fn header(text: &str, b: usize, le: usize) -> Option<(usize, bool)> {
    let label_start = b + BEGIN.len();
    let rest = &text[label_start..le];
    let close = rest.find(DASHES)?;
    let label = &rest[..close];
    if label.len() > 64
        || !label
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ')
    {
        return None;
    }
    let private = label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK");
    Some((label_start + close + DASHES.len(), private))
}

/// End of the `-----END ...-----` marker at `e`; the end of its line when the
/// closing dashes are missing.
fn marker_end(text: &str, e: usize) -> usize {
    let label_start = e + END.len();
    let line_end = text[label_start..]
        .find('\n')
        .map_or(text.len(), |i| label_start + i);
    let window_end = line_end.min(label_start + 72);
    let window_end = floor_boundary(text, window_end);
    match text[label_start..window_end].find(DASHES) {
        Some(i) => label_start + i + DASHES.len(),
        None => trim_end(text, label_start, line_end),
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='
}

/// `end` without trailing whitespace (including a CR of a CRLF line).
fn trim_end(text: &str, start: usize, end: usize) -> usize {
    start + text[start..end].trim_end().len()
}

/// First and last long base64 runs in `text[a..b]`.
fn long_runs(text: &str, a: usize, b: usize) -> Option<(usize, usize)> {
    let bytes = &text.as_bytes()[a..b];
    let mut first = None;
    let mut last_end = 0;
    let mut i = 0;
    while i < bytes.len() {
        if is_b64(bytes[i]) {
            let s = i;
            while i < bytes.len() && is_b64(bytes[i]) {
                i += 1;
            }
            if i - s >= LONG_RUN {
                first.get_or_insert(a + s);
                last_end = a + i;
            }
        } else {
            i += 1;
        }
    }
    first.map(|f| (f, last_end))
}

/// Start of the last whitespace-separated token of `text[a..b]`, if it is
/// not empty.
fn last_token(text: &str, a: usize, b: usize) -> Option<(usize, usize)> {
    let end = trim_end(text, a, b);
    if end == a {
        return None;
    }
    let start = text[a..end].rfind([' ', '\t']).map_or(a, |i| a + i + 1);
    Some((start, end))
}

/// The part of a body line `text[a..b]` that is key material.
fn body_span(text: &str, a: usize, b: usize) -> Option<(usize, usize)> {
    let tok = last_token(text, a, b)?;
    Some(match long_runs(text, a, b) {
        Some((s, e)) => (s.min(tok.0), e.max(tok.1)),
        None => tok,
    })
}

/// Where the redaction of an END line starts: any body text before the
/// marker (joined by a literal `\n`, say), else the marker itself.
fn body_start(text: &str, a: usize, e: usize) -> usize {
    if text[a..e].ends_with([' ', '\t']) || a == e {
        return long_runs(text, a, e).map_or(e, |(s, _)| s);
    }
    let tok = last_token(text, a, e).map_or(e, |(s, _)| s);
    long_runs(text, a, e).map_or(tok, |(s, _)| s.min(tok))
}
