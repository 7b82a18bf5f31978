//! Lines to records: container partial lines joined, multi-line records
//! grouped, and the checkpoint kept at the start of what is unfinished.
//!
//! One [`Assembler`] per tailed file (and one for `logship normalize`'s
//! stdin). A line goes through three steps:
//!
//! 1. **unwrap** a container line (`cri`, `docker`, or either under `auto`):
//!    its stream picks a *slot* (plain, stdout, stderr). Slots never mix:
//!    each has its own partial line and its own open record;
//! 2. **join partials** (CRI `P`, docker `log` without `\n`) until the line
//!    is complete, at most [`MAX_LINE`] bytes (the rest of an over-long line
//!    is dropped up to its last piece, and counted);
//! 3. **group** complete lines into records with the source's
//!    [`Rules`](super::multiline::Rules), at most `max_lines` lines and
//!    `max_bytes` bytes (a record at a limit is cut, marked `[TRUNCATED]`,
//!    counted, and its remaining continuation lines are dropped).
//!
//! A record's first line is normalized and redacted when it arrives; each
//! continuation line is redacted as it arrives and appended. Redaction thus
//! sees every line in file order with the file's one stream state, exactly
//! as `logship redact` would.
//!
//! **Order and the checkpoint.** Events of a file are released in the order
//! of their first line's offset. A record (or partial line) that is still
//! open holds back every event that starts after it — including other
//! slots' — so at any moment the released events are exactly those that
//! start before [`Assembler::resume`]'s offset, and nothing after it has
//! been written. The pipeline checkpoints that offset with the redaction
//! state taken just before its first line; after `kill -9` the agent reads
//! the unfinished record again from its first line and yields it once,
//! whole. No new checkpoint field is needed.
//!
//! **Bounds.** A partial line is at most [`MAX_LINE`] bytes, a record at
//! most `max_bytes`, and what waits behind an open record at most
//! [`HELD_BYTES`] (beyond it the oldest open record is closed early and
//! counted). Everything open is complete after `timeout` without a new
//! line, so the last record of a file is never held forever.
//!
//! Known limits: a record's dropped continuation lines (after a cut) are
//! not remembered across a restart — read again, they form a record of
//! their own; a record open when the file is truncated or when the config
//! is reloaded is emitted as it stands.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::line::{self, LinePath, Stream};
use super::multiline::{Class, Rules, Shape};
use crate::config::SourceConfig;
use crate::event::{Event, IdField, Tier, TRUNCATED_SUFFIX};
use crate::normalize::formats;
use crate::normalize::{Normalizer, Supplied};
use crate::ops::metrics::metrics;
use crate::redact::{Redactor, StreamState};
use crate::source::file::{FileKey, FileState, TailedFile};
use crate::source::lines::MAX_LINE;
use crate::source::tailer::{Line, Tailer};

/// Bytes of finished events allowed to wait behind an open record.
pub const HELD_BYTES: usize = 8 << 20;
/// Events allowed to wait behind an open record.
pub const HELD_EVENTS: usize = 4096;
/// How long a partial container line waits for its next piece when the
/// source has no `[sources.multiline]` (which sets its own timeout).
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Slots: lines outside a container wrapper, stdout, stderr.
const SLOTS: usize = 3;

/// Why a record or line was cut or closed early (the `reason` label of
/// `logship_records_cut_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// A record reached `max_lines`.
    MaxLines,
    /// A record reached `max_bytes`.
    MaxBytes,
    /// A partial container line reached 256 KiB.
    Partial,
    /// Too much waited behind an open record: it was closed early.
    Held,
}

impl Cut {
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::MaxLines => "max_lines",
            Cut::MaxBytes => "max_bytes",
            Cut::Partial => "partial_line",
            Cut::Held => "held",
        }
    }
}

fn count_cut(c: Cut) {
    metrics().records_cut(c.as_str()).inc();
}

/// Where reading must resume to yield a released event again, whole, with
/// everything after it — the pair (offset, redaction state before it) a
/// checkpoint records, as [`Assembler::resume`] gives for what is open.
///
/// Usually that is the event's own first line. But events released
/// together may overlap: a record of one slot can have lines after the
/// first line of another slot's record released with it (a stderr trace
/// around a stdout line). Resuming inside such a group would read the
/// earlier record's later lines as records of their own, so the point is
/// then the first line of the group's first record that nothing released
/// before overlaps. `logship checkpoint repair` resumes a file at the
/// point of its first event not stored.
pub struct Start<'a> {
    pub at: u64,
    pub redact: &'a StreamState,
}

/// A source's record settings, built once per source.
#[derive(Clone, Debug)]
pub struct RecordSpec {
    rules: Option<Rules>,
    timeout: Duration,
    max_lines: u32,
    max_bytes: usize,
    /// Lines may be container lines (`cri`, `docker`, `auto`).
    container: bool,
}

impl RecordSpec {
    /// The spec of `cfg`; a `[sources.multiline]` that does not compile
    /// was refused by `Config::validate`, so it is left out here.
    pub fn new(cfg: &SourceConfig) -> RecordSpec {
        let container = matches!(
            cfg.format,
            crate::config::Format::Auto
                | crate::config::Format::Cri
                | crate::config::Format::Docker
        );
        let mut spec = RecordSpec::lines(container);
        if let Some(ml) = &cfg.multiline {
            match Rules::new(ml) {
                Ok(r) => spec = RecordSpec::grouped(r, ml, container),
                Err(e) => {
                    tracing::error!(source = %cfg.name.get_ref(), error = %e, "multiline ignored")
                }
            }
        }
        spec
    }

    /// One record per (joined) line.
    pub fn lines(container: bool) -> RecordSpec {
        RecordSpec {
            rules: None,
            timeout: PARTIAL_TIMEOUT,
            max_lines: 1,
            max_bytes: MAX_LINE,
            container,
        }
    }

    /// Records grouped by `rules` with `ml`'s limits.
    pub fn grouped(
        rules: Rules,
        ml: &crate::config::MultilineConfig,
        container: bool,
    ) -> RecordSpec {
        RecordSpec {
            rules: Some(rules),
            timeout: ml.timeout.get_ref().get(),
            max_lines: (*ml.max_lines.get_ref()).max(1),
            max_bytes: usize::try_from(ml.max_bytes.get_ref().0)
                .unwrap_or(MAX_LINE)
                .clamp(1, MAX_LINE),
            container,
        }
    }

    /// Whether lines need an [`Assembler`] at all: a source with no
    /// multiline whose lines cannot be container lines (`text`, `json`,
    /// ...) goes straight through [`LinePath::event`].
    pub fn needed(&self) -> bool {
        self.rules.is_some() || self.container
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What one call needs from the caller: the source's steps, the file's
/// stream state and ids, clocks, and the `seq` counter.
pub struct Ctx<'a> {
    pub path: LinePath<'a>,
    pub spec: &'a RecordSpec,
    pub path_ids: &'a [(IdField, String)],
    pub redact: &'a mut StreamState,
    pub now: Instant,
    pub wall_ms: i64,
    pub next_seq: &'a mut u64,
}

impl Ctx<'_> {
    /// [`LinePath::begin`] with this file's stream.
    fn begin(
        &mut self,
        text: &str,
        truncated: bool,
        wrap: Option<(formats::Stream, Option<i64>)>,
        ev: &mut Event,
    ) -> Supplied {
        let stream = Stream {
            path_ids: self.path_ids,
            redact: self.redact,
        };
        self.path
            .begin(text, truncated, wrap, stream, self.wall_ms, ev)
    }
}

/// A record (or single line) between its first line and its release.
#[derive(Debug)]
struct Unit {
    /// File offset of its first line.
    start: u64,
    /// File offset of its last line (dropped continuation lines included).
    last_at: u64,
    /// Redaction state just before its first line.
    snapshot: StreamState,
    slot: usize,
    ev: Event,
    supplied: Supplied,
    lines: u32,
    /// Continuation lines dropped after a cut.
    dropped: u32,
    /// Its first line carried a level.
    leveled: bool,
    /// It has stack-trace lines (see [`Class::Frame`]).
    trace: bool,
    /// More lines may still join.
    open: bool,
    shape: Shape,
    /// Cut at a limit (or a line of it was): ends in `[TRUNCATED]`; further
    /// continuation lines are dropped while it stays open.
    cut: bool,
    last: Instant,
}

/// A container line whose last piece has not come yet.
#[derive(Debug)]
struct Partial {
    start: u64,
    /// Offset of its latest piece.
    last_at: u64,
    snapshot: StreamState,
    text: String,
    truncated: bool,
    /// Bytes of pieces dropped since the line reached [`MAX_LINE`].
    dropped: usize,
    ts: Option<i64>,
    last: Instant,
}

/// Continuation lines a cut record absorbs (drops) before it is closed.
const ABSORB_LINES: u32 = 100_000;
/// Bytes of pieces an over-long partial line absorbs before it is closed.
const ABSORB_BYTES: usize = 16 * MAX_LINE;

/// The per-file state of the record steps. See the module doc.
#[derive(Debug)]
pub struct Assembler {
    /// Units by `start`, oldest first.
    held: VecDeque<Unit>,
    held_bytes: usize,
    partial: [Option<Partial>; SLOTS],
    /// The rest of an over-long partial line is dropped up to its last
    /// piece (after [`ABSORB_BYTES`]).
    dropping: [bool; SLOTS],
    /// The rest of a cut record is dropped up to the next record start
    /// (after [`ABSORB_LINES`]).
    discarding: [bool; SLOTS],
    /// Offset of the last line pushed (a smaller one: the file was reset).
    last_at: Option<u64>,
    /// Events to reuse (their buffers).
    spare: Vec<Event>,
    scratch: String,
    ev: Event,
}

impl Default for Assembler {
    fn default() -> Assembler {
        Assembler {
            held: VecDeque::new(),
            held_bytes: 0,
            partial: Default::default(),
            dropping: [false; SLOTS],
            discarding: [false; SLOTS],
            last_at: None,
            spare: Vec::new(),
            scratch: String::new(),
            ev: Event::empty(Tier::System),
        }
    }
}

/// One complete (joined) line on its way to a record.
struct Whole<'t> {
    slot: usize,
    /// Offsets of its first and last piece.
    start: u64,
    last_at: u64,
    /// Redaction state before its first piece, when that came earlier.
    snapshot: Option<StreamState>,
    text: &'t str,
    truncated: bool,
    wrap: Option<(formats::Stream, Option<i64>)>,
}

impl Assembler {
    /// Nothing is open or waiting: the checkpoint may record the file's
    /// read position as it is.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.partial.iter().all(Option::is_none)
    }

    /// Where reading must resume after a restart, and the redaction state
    /// there: the first line of the oldest unreleased record or partial
    /// line. `None` when idle.
    pub fn resume(&self) -> Option<(u64, &StreamState)> {
        let held = self.held.front().map(|u| (u.start, &u.snapshot));
        let partial = self
            .partial
            .iter()
            .flatten()
            .map(|p| (p.start, &p.snapshot))
            .min_by_key(|(s, _)| *s);
        match (held, partial) {
            (Some(h), Some(p)) => Some(if p.0 < h.0 { p } else { h }),
            (h, p) => h.or(p),
        }
    }

    /// Take one line of the file, starting at file offset `at`; finished
    /// events go to `out` in order.
    pub fn push(&mut self, line: Line<'_>, at: u64, cx: &mut Ctx<'_>, out: &mut dyn FnMut(&Event)) {
        self.push_with_start(line, at, cx, &mut |ev, _| out(ev));
    }

    /// [`push`](Self::push), also telling where each released event's
    /// record began.
    pub fn push_with_start(
        &mut self,
        line: Line<'_>,
        at: u64,
        cx: &mut Ctx<'_>,
        out: &mut dyn FnMut(&Event, Start<'_>),
    ) {
        if self.last_at.is_some_and(|l| at <= l) {
            // The file was truncated and is read again from the start.
            self.flush_with_start(cx, out);
            self.dropping = [false; SLOTS];
            self.discarding = [false; SLOTS];
        }
        self.last_at = Some(at);
        let text = line::text(line.bytes);
        let container = if cx.spec.container {
            cx.path.normalizer.container(&text)
        } else {
            None
        };
        let (slot, wrap, inner, partial) = match container {
            Some(c) => (slot_of(c.stream), Some((c.stream, c.ts)), c.text, c.partial),
            None => (0, None, Cow::Borrowed(&*text), false),
        };
        // The common case: a complete line, nothing open, no grouping.
        if cx.spec.rules.is_none() && !partial && !self.dropping[slot] && self.is_idle() {
            let mut ev = std::mem::replace(&mut self.ev, Event::empty(Tier::System));
            // A few bytes (an optional open PEM block): cheap per line.
            let before = cx.redact.clone();
            let supplied = cx.begin(&inner, line.truncated, wrap, &mut ev);
            line::finish(supplied, cx.next_seq, &mut ev);
            out(
                &ev,
                Start {
                    at,
                    redact: &before,
                },
            );
            self.ev = ev;
            return;
        }
        if let Some(p) = self.partial[slot].as_mut() {
            p.last = cx.now;
            p.last_at = at;
            p.truncated |= line.truncated;
            if p.text.len() >= MAX_LINE {
                p.dropped += inner.len();
                metrics().record_lines_dropped.inc();
            } else if append_capped(&mut p.text, &inner) {
                count_cut(Cut::Partial);
            }
            let absorbed = p.dropped >= ABSORB_BYTES;
            if partial && !absorbed {
                return;
            }
            let p = self.partial[slot].take().unwrap_or_else(|| unreachable!());
            // A line too long even to absorb: the rest of it is dropped.
            self.dropping[slot] = partial;
            let whole = Whole {
                slot,
                start: p.start,
                last_at: at,
                snapshot: Some(p.snapshot),
                text: &p.text,
                truncated: p.truncated || p.text.len() >= MAX_LINE,
                wrap: wrap.map(|(s, _)| (s, p.ts)),
            };
            self.line(whole, cx);
            self.release(cx, out);
            return;
        }
        if self.dropping[slot] {
            self.dropping[slot] = partial;
            metrics().record_lines_dropped.inc();
            return;
        }
        if partial {
            let mut text = String::new();
            if append_capped(&mut text, &inner) {
                count_cut(Cut::Partial);
            }
            self.partial[slot] = Some(Partial {
                start: at,
                last_at: at,
                snapshot: cx.redact.clone(),
                text,
                truncated: line.truncated,
                dropped: 0,
                ts: wrap.and_then(|(_, ts)| ts),
                last: cx.now,
            });
            return;
        }
        let whole = Whole {
            slot,
            start: at,
            last_at: at,
            snapshot: None,
            text: &inner,
            truncated: line.truncated,
            wrap,
        };
        self.line(whole, cx);
        self.release(cx, out);
    }

    /// One complete line: it joins its slot's open record or begins a
    /// unit of its own. Nothing is released here.
    fn line(&mut self, w: Whole<'_>, cx: &mut Ctx<'_>) {
        let open = self.open_unit(w.slot);
        let mut shape = Shape::Plain;
        let class = match &cx.spec.rules {
            None => Class::Single,
            Some(r) => r.classify(open.map(|i| self.held[i].shape), w.text, &mut shape),
        };
        if matches!(class, Class::Join | Class::Frame) {
            if let Some(i) = open {
                self.held[i].trace |= class == Class::Frame;
                self.join(i, &w, shape, cx);
                return;
            }
            if self.discarding[w.slot] {
                // The rest of a record that was cut and closed long ago.
                metrics().record_lines_dropped.inc();
                self.redact_only(w.text, cx);
                return;
            }
        }
        self.discarding[w.slot] = false;
        if let Some(i) = open {
            self.held[i].open = false;
        }
        let snapshot = w.snapshot.unwrap_or_else(|| cx.redact.clone());
        let mut ev = self
            .spare
            .pop()
            .unwrap_or_else(|| Event::empty(Tier::System));
        let supplied = cx.begin(w.text, w.truncated, w.wrap, &mut ev);
        let leveled = ev.lvl != cx.path.normalizer.default_level()
            || crate::normalize::level::from_text(w.text).is_some();
        let unit = Unit {
            leveled,
            trace: class == Class::Frame,
            start: w.start,
            last_at: w.last_at,
            snapshot,
            slot: w.slot,
            supplied,
            lines: 1,
            dropped: 0,
            open: class != Class::Single,
            shape,
            cut: w.truncated,
            last: cx.now,
            ev,
        };
        self.held_bytes += unit.ev.msg.len();
        // Units arrive in `start` order except a joined partial line,
        // whose first piece may precede lines of other slots.
        let pos = self.held.partition_point(|u| u.start < w.start);
        self.held.insert(pos, unit);
    }

    /// Run a dropped line through redaction all the same: the stream state
    /// must evolve over every line, or a replay would differ.
    fn redact_only(&mut self, text: &str, cx: &mut Ctx<'_>) {
        self.scratch.clear();
        self.scratch.push_str(text);
        cx.path.redact_line(cx.redact, &mut self.scratch);
    }

    /// Append a continuation line to the open unit `i`, or cut it.
    fn join(&mut self, i: usize, w: &Whole<'_>, shape: Shape, cx: &mut Ctx<'_>) {
        self.redact_only(w.text, cx);
        let u = &mut self.held[i];
        u.last_at = w.last_at;
        u.last = cx.now;
        let limit = if u.cut && u.lines > 1 || u.dropped > 0 {
            None // already cut: absorbing
        } else if u.lines >= cx.spec.max_lines {
            Some(Cut::MaxLines)
        } else if u.ev.msg.len() + 1 + self.scratch.len() > cx.spec.max_bytes {
            Some(Cut::MaxBytes)
        } else {
            u.ev.msg.push('\n');
            u.ev.msg.push_str(&self.scratch);
            u.lines += 1;
            u.shape = shape;
            u.cut |= w.truncated;
            self.held_bytes += 1 + self.scratch.len();
            return;
        };
        if let Some(c) = limit {
            u.cut = true;
            count_cut(c);
        }
        // Cut: the line is dropped; the record stays open to absorb the
        // rest of itself, so the checkpoint covers those lines too.
        u.dropped += 1;
        metrics().record_lines_dropped.inc();
        if u.dropped >= ABSORB_LINES {
            u.open = false;
            self.discarding[u.slot] = true;
        }
    }

    /// The open unit of `slot`, if any (the newest of that slot).
    fn open_unit(&self, slot: usize) -> Option<usize> {
        let i = self.held.iter().rposition(|u| u.slot == slot)?;
        self.held[i].open.then_some(i)
    }

    /// Release finished units from the front, in order, as long as every
    /// line they hold comes before anything still unreleased: the released
    /// lines are then always a prefix of the file (see the module doc).
    fn release(&mut self, cx: &mut Ctx<'_>, out: &mut dyn FnMut(&Event, Start<'_>)) {
        loop {
            let n = self.releasable();
            if n == 0 {
                let over = self.held_bytes > HELD_BYTES || self.held.len() > HELD_EVENTS;
                if over && self.close_oldest(cx) {
                    continue;
                }
                return;
            }
            // The first unit released is never overlapped: everything
            // released before ended before it (see `releasable`).
            let mut point: Option<(u64, StreamState)> = None;
            let mut max_last = 0;
            for _ in 0..n {
                let mut u = self.held.pop_front().unwrap_or_else(|| unreachable!());
                self.held_bytes = self.held_bytes.saturating_sub(u.ev.msg.len());
                finish_unit(&mut u, cx.spec.max_bytes);
                line::finish(u.supplied, cx.next_seq, &mut u.ev);
                if point.is_none() || max_last < u.start {
                    point = Some((u.start, u.snapshot.clone()));
                }
                max_last = max_last.max(u.last_at);
                let (at, redact) = point.as_ref().unwrap_or_else(|| unreachable!());
                out(&u.ev, Start { at: *at, redact });
                if self.spare.len() < 16 {
                    self.spare.push(u.ev);
                }
            }
        }
    }

    /// How many units from the front can be released now.
    fn releasable(&self) -> usize {
        let first_partial = self.partial.iter().flatten().map(|p| p.start).min();
        let mut max_last = 0;
        let mut best = 0;
        for (i, u) in self.held.iter().enumerate() {
            if u.open {
                break;
            }
            max_last = max_last.max(u.last_at);
            let next = self
                .held
                .get(i + 1)
                .map(|v| v.start)
                .into_iter()
                .chain(first_partial)
                .min();
            if next.is_none_or(|n| max_last < n) {
                best = i + 1;
            }
        }
        best
    }

    /// Too much waits: close the oldest open record or partial line early
    /// (counted). False if nothing was open.
    fn close_oldest(&mut self, cx: &mut Ctx<'_>) -> bool {
        let unit = self.held.iter().position(|u| u.open);
        let partial = (0..SLOTS)
            .filter_map(|s| self.partial[s].as_ref().map(|p| (p.start, s)))
            .min();
        count_cut(Cut::Held);
        match (unit, partial) {
            (Some(i), Some((ps, _))) if self.held[i].start < ps => self.held[i].open = false,
            (_, Some((_, slot))) => self.complete_partial(slot, cx),
            (Some(i), None) => self.held[i].open = false,
            (None, None) => return false,
        }
        true
    }

    /// Complete what has waited `timeout` without a new line.
    pub fn tick(&mut self, cx: &mut Ctx<'_>, out: &mut dyn FnMut(&Event)) {
        let out = &mut |ev: &Event, _: Start<'_>| out(ev);
        if self.is_idle() {
            return;
        }
        let timeout = cx.spec.timeout;
        for slot in 0..SLOTS {
            if self.partial[slot]
                .as_ref()
                .is_some_and(|p| cx.now.duration_since(p.last) >= timeout)
            {
                self.complete_partial(slot, cx);
            }
        }
        for u in self.held.iter_mut() {
            if u.open && cx.now.duration_since(u.last) >= timeout {
                u.open = false;
            }
        }
        self.release(cx, out);
    }

    /// Complete everything now (end of input, file truncated or gone).
    pub fn flush(&mut self, cx: &mut Ctx<'_>, out: &mut dyn FnMut(&Event)) {
        self.flush_with_start(cx, &mut |ev, _| out(ev));
    }

    /// [`flush`](Self::flush), also telling where each released event's
    /// record began.
    pub fn flush_with_start(&mut self, cx: &mut Ctx<'_>, out: &mut dyn FnMut(&Event, Start<'_>)) {
        for slot in 0..SLOTS {
            self.complete_partial(slot, cx);
        }
        for u in self.held.iter_mut() {
            u.open = false;
        }
        self.release(cx, out);
    }

    /// A partial line whose last piece never came is taken as complete.
    fn complete_partial(&mut self, slot: usize, cx: &mut Ctx<'_>) {
        let Some(p) = self.partial[slot].take() else {
            return;
        };
        let stream = match slot {
            1 => formats::Stream::Stdout,
            _ => formats::Stream::Stderr,
        };
        let whole = Whole {
            slot,
            start: p.start,
            last_at: p.last_at,
            snapshot: Some(p.snapshot),
            text: &p.text,
            truncated: p.truncated || p.text.len() >= MAX_LINE,
            wrap: Some((stream, p.ts)),
        };
        self.line(whole, cx);
        // Its later pieces, if they still come, start a new line.
    }
}

fn slot_of(s: formats::Stream) -> usize {
    match s {
        formats::Stream::Stdout => 1,
        formats::Stream::Stderr => 2,
    }
}

/// Append `piece` to a joined line without passing [`MAX_LINE`] bytes;
/// true when the line is full.
fn append_capped(text: &mut String, piece: &str) -> bool {
    let room = MAX_LINE.saturating_sub(text.len());
    if piece.len() <= room {
        text.push_str(piece);
        return text.len() >= MAX_LINE;
    }
    let mut cut = room;
    while !piece.is_char_boundary(cut) {
        cut -= 1;
    }
    text.push_str(&piece[..cut]);
    true
}

/// The last touches on a record: trailing blank lines go, the byte limit
/// holds, a cut record says so.
fn finish_unit(u: &mut Unit, max_bytes: usize) {
    // A stack trace without a level of its own (`Exception in thread`,
    // `panic:`, an uncaught traceback) is what a reader calls an error.
    if u.trace && u.lines > 1 && !u.leveled {
        u.ev.lvl = crate::event::Level::Error;
    }
    while u.lines > 1 {
        match u.ev.msg.rfind('\n') {
            Some(i) if u.ev.msg[i + 1..].trim().is_empty() => {
                u.ev.msg.truncate(i);
                u.lines -= 1;
            }
            _ => break,
        }
    }
    if u.ev.msg.len() > max_bytes {
        let mut cut = max_bytes;
        while !u.ev.msg.is_char_boundary(cut) {
            cut -= 1;
        }
        u.ev.msg.truncate(cut);
        u.cut = true;
    }
    if u.cut && !u.ev.msg.ends_with(TRUNCATED_SUFFIX) {
        u.ev.msg.push_str(TRUNCATED_SUFFIX);
    }
}

/// The assemblers of all tailed files, keyed by file, with the index of
/// their source.
#[derive(Debug, Default)]
pub struct Files {
    map: HashMap<FileKey, (usize, Assembler)>,
}

/// What the per-file calls share: every source's steps and the counters.
pub struct Shared<'a> {
    pub normalizers: &'a [Normalizer],
    pub specs: &'a [RecordSpec],
    pub redactor: &'a Redactor,
    pub next_seq: &'a mut u64,
    pub now: Instant,
    pub wall_ms: i64,
}

impl Files {
    /// No file has gone through the record steps (or all were forgotten).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// No file has anything open or waiting.
    pub fn is_idle(&self) -> bool {
        self.map.values().all(|(_, a)| a.is_idle())
    }

    /// One line of the followed file `f`.
    pub fn push(
        &mut self,
        f: &mut TailedFile,
        line: Line<'_>,
        sh: &mut Shared<'_>,
        out: &mut dyn FnMut(&Event),
    ) {
        let si = f.source_idx;
        let (idx, a) = self
            .map
            .entry(f.key())
            .or_insert_with(|| (si, Assembler::default()));
        if *idx != si {
            *idx = si;
        }
        let mut cx = Ctx {
            path: LinePath {
                normalizer: &sh.normalizers[si],
                redactor: sh.redactor,
            },
            spec: &sh.specs[si],
            path_ids: &f.path_ids,
            redact: &mut f.st.redact,
            now: sh.now,
            wall_ms: sh.wall_ms,
            next_seq: sh.next_seq,
        };
        a.push(line, line.at, &mut cx, out);
    }

    /// Complete what timed out; with `all`, everything (config reload).
    /// Files no longer followed, or read again from an offset before their
    /// oldest open record (truncated), are completed and forgotten.
    pub fn tick(
        &mut self,
        tailer: &mut Tailer,
        all: bool,
        sh: &mut Shared<'_>,
        out: &mut dyn FnMut(&Event),
    ) {
        let mut gone = Vec::new();
        for (key, (si, a)) in self.map.iter_mut() {
            if a.is_idle() {
                // Forget files no longer followed (rotated away and reaped).
                if tailer.file_mut(*key).is_none() {
                    gone.push(*key);
                }
                continue;
            }
            let Some(spec) = sh.specs.get(*si) else {
                gone.push(*key);
                continue;
            };
            let mut orphan_state = StreamState::default();
            let f = tailer.file_mut(*key);
            let stale = f
                .as_ref()
                .is_none_or(|f| a.resume().is_some_and(|(o, _)| o > f.st.offset));
            let (path_ids, redact): (&[(IdField, String)], &mut StreamState) = match f {
                Some(f) if !stale => (&f.path_ids, &mut f.st.redact),
                _ => (&[], &mut orphan_state),
            };
            let mut cx = Ctx {
                path: LinePath {
                    normalizer: &sh.normalizers[*si],
                    redactor: sh.redactor,
                },
                spec,
                path_ids,
                redact,
                now: sh.now,
                wall_ms: sh.wall_ms,
                next_seq: sh.next_seq,
            };
            if all || stale {
                a.flush(&mut cx, out);
            } else {
                a.tick(&mut cx, out);
            }
            if stale {
                gone.push(*key);
            }
        }
        for k in gone {
            self.map.remove(&k);
        }
    }

    /// Point each file's checkpoint state at its oldest unfinished record:
    /// its first line's offset and the redaction state before it.
    pub fn patch(&self, files: &mut [FileState]) {
        for st in files {
            if let Some((offset, redact)) = self.map.get(&st.key()).and_then(|(_, a)| a.resume()) {
                if offset <= st.offset {
                    st.offset = offset;
                    st.redact = redact.clone();
                    st.skipping = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, MultilineConfig, MultilineMode};
    use crate::event::{Level, MAX_MSG_BYTES};
    use crate::redact::RedactionConfig;

    /// Runs lines through one assembler as the pipeline does.
    struct Run {
        normalizer: Normalizer,
        redactor: Redactor,
        spec: RecordSpec,
        a: Assembler,
        redact: StreamState,
        seq: u64,
        now: Instant,
        out: Vec<Event>,
    }

    impl Run {
        fn new(format: Format, mode: Option<MultilineMode>) -> Run {
            let container = matches!(format, Format::Auto | Format::Cri | Format::Docker);
            let spec = match mode {
                None => RecordSpec::lines(container),
                Some(m) => {
                    let ml = MultilineConfig::with_mode(m);
                    RecordSpec::grouped(Rules::new(&ml).unwrap(), &ml, container)
                }
            };
            Run {
                normalizer: Normalizer::plain("app", Tier::System, format, "h"),
                redactor: Redactor::new(&RedactionConfig::default()).unwrap(),
                spec,
                a: Assembler::default(),
                redact: StreamState::default(),
                seq: 0,
                now: Instant::now(),
                out: Vec::new(),
            }
        }

        fn with(&mut self, f: impl FnOnce(&mut Assembler, &mut Ctx<'_>, &mut dyn FnMut(&Event))) {
            let mut cx = Ctx {
                path: LinePath {
                    normalizer: &self.normalizer,
                    redactor: &self.redactor,
                },
                spec: &self.spec,
                path_ids: &[],
                redact: &mut self.redact,
                now: self.now,
                wall_ms: 1_795_319_384_000,
                next_seq: &mut self.seq,
            };
            let out = &mut self.out;
            f(&mut self.a, &mut cx, &mut |ev| out.push(ev.clone()));
        }

        /// Push `lines` as one file, starting at offset `base`.
        fn feed(&mut self, lines: &[&str], base: u64) {
            let mut at = base;
            for l in lines {
                let line = Line {
                    bytes: l.as_bytes(),
                    truncated: false,
                    at,
                };
                self.with(|a, cx, out| a.push(line, line.at, cx, out));
                at += l.len() as u64 + 1;
            }
        }

        fn flush(&mut self) {
            self.with(|a, cx, out| a.flush(cx, out));
        }

        fn msgs(&self) -> Vec<&str> {
            self.out.iter().map(|e| e.msg.as_str()).collect()
        }
    }

    const JAVA: [&str; 9] = [
        "2026-11-22 03:49:44.100 INFO  [main] c.e.App - started",
        "2026-11-22 03:49:44.200 ERROR [main] c.e.App - request failed",
        "java.lang.IllegalStateException: boom",
        "\tat com.example.App.handle(App.java:42)",
        "\tat com.example.App.main(App.java:7)",
        "Caused by: java.io.IOException: disk",
        "\t... 2 more",
        "2026-11-22 03:49:45.000 WARN  [main] c.e.App - slow",
        "{\"level\":\"info\",\"msg\":\"json line\"}",
    ];

    #[test]
    fn java_record_first_line_gives_ts_and_level() {
        let mut r = Run::new(Format::Auto, Some(MultilineMode::Java));
        r.feed(&JAVA[..8], 0);
        // The last record waits for what follows it.
        assert_eq!(r.out.len(), 2);
        let at7: u64 = JAVA[..7].iter().map(|l| l.len() as u64 + 1).sum();
        assert_eq!(r.a.resume().map(|(o, _)| o), Some(at7));
        // A JSON line never joins: the record before it is complete.
        r.feed(&JAVA[8..], at7 + JAVA[7].len() as u64 + 1);
        assert!(r.a.is_idle());
        let m = r.msgs();
        assert_eq!(m.len(), 4, "{m:#?}");
        assert_eq!(m[1], JAVA[1..7].join("\n"));
        assert_eq!(
            (r.out[1].lvl, r.out[1].ts),
            (Level::Error, 1_795_319_384_200)
        );
        assert_eq!(m[3], "json line");
        let seqs: Vec<u64> = r.out.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
    }

    #[test]
    fn cri_partials_join_per_stream_and_keep_file_order() {
        let mut r = Run::new(Format::Cri, None);
        r.feed(
            &[
                "2026-11-22T03:49:44.000000001Z stdout P hello ",
                "2026-11-22T03:49:44.000000002Z stderr P ERROR bro",
                "2026-11-22T03:49:44.000000003Z stderr F ken",
                "2026-11-22T03:49:44.000000004Z stdout F world",
                "2026-11-22T03:49:44.000000005Z stdout F next",
            ],
            0,
        );
        let got: Vec<(&str, &str)> = r
            .out
            .iter()
            .map(|e| (e.src.as_str(), e.msg.as_str()))
            .collect();
        // stdout's line began first, so it is released first.
        assert_eq!(
            got,
            [
                ("stdout", "hello world"),
                ("stderr", "ERROR broken"),
                ("stdout", "next")
            ]
        );
        assert_eq!(r.out[1].lvl, Level::Error);
        assert_eq!(r.out[0].ts, 1_795_319_384_000);
    }

    #[test]
    fn only_partials_stay_bounded() {
        let mut r = Run::new(Format::Cri, None);
        let piece = format!("2026-11-22T03:49:44Z stdout P {}", "x".repeat(16 * 1024));
        let step = piece.len() as u64 + 1;
        let lines: Vec<&str> = std::iter::repeat_n(piece.as_str(), 100).collect();
        r.feed(&lines, 0);
        // Joined up to 256 KiB, the rest absorbed: the checkpoint stays at
        // the line's first piece, memory at one capped line.
        assert!(r.out.is_empty());
        assert_eq!(r.a.resume().map(|(o, _)| o), Some(0));
        r.feed(&lines, 100 * step);
        r.feed(&lines, 200 * step);
        // Too long even to absorb: emitted cut, its remaining pieces dropped.
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.out[0].msg.len(), MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
        assert!(r.out[0].msg.ends_with(TRUNCATED_SUFFIX));
        assert!(r.a.is_idle());
        r.feed(
            &[
                "2026-11-22T03:49:44Z stdout F end",
                "2026-11-22T03:49:44Z stdout F after",
            ],
            1 << 30,
        );
        assert_eq!(r.msgs()[1..], ["after"]);
    }

    #[test]
    fn endless_trace_is_cut_at_max_lines() {
        let mut r = Run::new(Format::Auto, Some(MultilineMode::Java));
        let mut lines = vec!["2026-11-22 03:49:44 ERROR x"];
        lines.extend(std::iter::repeat_n("\tat a.b.C.d(C.java:1)", 10_000));
        lines.push("2026-11-22 03:49:45 INFO y");
        r.feed(&lines, 0);
        assert_eq!(r.out.len(), 1);
        assert_eq!(r.out[0].msg.lines().count(), 500);
        assert!(r.out[0].msg.ends_with(TRUNCATED_SUFFIX));
        // The next record is what the checkpoint waits for.
        let next: u64 = lines[..10_001].iter().map(|l| l.len() as u64 + 1).sum();
        assert_eq!(r.a.resume().map(|(o, _)| o), Some(next));
    }

    #[test]
    fn open_record_holds_other_stream_until_timeout() {
        let mut r = Run::new(Format::Cri, Some(MultilineMode::Auto));
        r.feed(
            &[
                "2026-11-22T03:49:44Z stderr F Traceback (most recent call last):",
                "2026-11-22T03:49:44Z stdout F GET /health 200",
                "2026-11-22T03:49:44Z stderr F   File \"a.py\", line 1, in <module>",
                "2026-11-22T03:49:44Z stdout F GET /ready 200",
                "2026-11-22T03:49:44Z stderr F ZeroDivisionError: division by zero",
            ],
            0,
        );
        assert!(r.out.is_empty());
        assert_eq!(r.a.resume().map(|(o, _)| o), Some(0));
        r.now += Duration::from_secs(2);
        r.with(|a, cx, out| a.tick(cx, out));
        let got: Vec<(&str, usize)> = r
            .out
            .iter()
            .map(|e| (e.src.as_str(), e.msg.lines().count()))
            .collect();
        assert_eq!(got, [("stderr", 3), ("stdout", 1), ("stdout", 1)]);
        // The stdout lines are whole records of their own; they are released
        // in file order once the traceback before them is complete.
        assert!(r.a.is_idle());
    }

    /// Restart after every line: resuming at `resume()` with its state
    /// yields exactly the events of an uninterrupted run.
    #[test]
    fn resume_point_gives_each_record_once() {
        let mut lines: Vec<String> = Vec::new();
        for i in 0..3 {
            lines.push(format!(
                "2026-11-22T03:49:4{i}Z stderr F 2026-11-22 ERROR failed {i}"
            ));
            lines.push("2026-11-22T03:49:44Z stdout P part ".into());
            lines.push("2026-11-22T03:49:44Z stderr F java.lang.RuntimeException: x".into());
            lines.push("2026-11-22T03:49:44Z stdout F one".into());
            lines.push("2026-11-22T03:49:44Z stderr F \tat a.B.c(B.java:1)".into());
            lines.push("2026-11-22T03:49:44Z stderr F -----BEGIN RSA PRIVATE KEY-----".into());
            lines.push("2026-11-22T03:49:44Z stderr F MIIEowIBAAKCAQEAvSECRETSECRETSECRET".into());
            lines.push("2026-11-22T03:49:44Z stderr F -----END RSA PRIVATE KEY-----".into());
            lines.push("2026-11-22T03:49:44Z stdout F plain".into());
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let offsets: Vec<u64> = lines
            .iter()
            .scan(0u64, |at, l| {
                let o = *at;
                *at += l.len() as u64 + 1;
                Some(o)
            })
            .collect();
        let whole = {
            let mut r = Run::new(Format::Cri, Some(MultilineMode::Auto));
            r.feed(&lines, 0);
            r.flush();
            r.msgs().into_iter().map(String::from).collect::<Vec<_>>()
        };
        assert!(whole.iter().all(|m| !m.contains("SECRET")), "{whole:#?}");
        for cut in 0..=lines.len() {
            let mut first = Run::new(Format::Cri, Some(MultilineMode::Auto));
            first.feed(&lines[..cut], 0);
            let (from, state) = match first.a.resume() {
                Some((o, s)) => (o, s.clone()),
                None => (
                    offsets.get(cut).copied().unwrap_or(u64::MAX),
                    first.redact.clone(),
                ),
            };
            let mut second = Run::new(Format::Cri, Some(MultilineMode::Auto));
            second.redact = state;
            let skip = offsets
                .iter()
                .position(|&o| o >= from)
                .unwrap_or(lines.len());
            second.feed(&lines[skip..], from);
            second.flush();
            let mut got: Vec<String> = first.msgs().into_iter().map(String::from).collect();
            got.extend(second.msgs().into_iter().map(String::from));
            assert_eq!(got, whole, "restart after line {cut} (resume at {from})");
        }
    }

    /// Every released event tells where reading must resume to yield it
    /// again: resuming there (a fresh assembler from that line, with that
    /// redaction state) yields exactly the events from the first one with
    /// the same point on — the point `logship checkpoint repair` resumes a
    /// file at.
    #[test]
    fn each_start_resumes_at_its_record() {
        let lines = [
            "2026-11-22T03:49:40Z stderr F 2026-11-22 ERROR failed",
            "2026-11-22T03:49:40Z stdout P part ",
            "2026-11-22T03:49:40Z stderr F java.lang.RuntimeException: x",
            "2026-11-22T03:49:40Z stdout F one",
            "2026-11-22T03:49:40Z stderr F -----BEGIN RSA PRIVATE KEY-----",
            "2026-11-22T03:49:40Z stderr F MIIEowIBAAKCAQEAvSECRETSECRETSECRET",
            "2026-11-22T03:49:40Z stdout F plain inside the key block",
            "2026-11-22T03:49:40Z stderr F -----END RSA PRIVATE KEY-----",
            "2026-11-22T03:49:40Z stdout F after",
            "2026-11-22T03:49:41Z stderr F 2026-11-22 WARN again",
        ];
        let offsets: Vec<u64> = lines
            .iter()
            .scan(0u64, |at, l| {
                let o = *at;
                *at += l.len() as u64 + 1;
                Some(o)
            })
            .collect();
        let mut whole = Run::new(Format::Cri, Some(MultilineMode::Auto));
        let mut starts = Vec::new();
        let mut at = 0;
        for l in lines {
            let line = Line {
                bytes: l.as_bytes(),
                truncated: false,
                at,
            };
            whole.with(|a, cx, out| {
                a.push_with_start(line, at, cx, &mut |ev, s| {
                    out(ev);
                    starts.push((s.at, s.redact.clone()));
                })
            });
            at += l.len() as u64 + 1;
        }
        whole.with(|a, cx, out| {
            a.flush_with_start(cx, &mut |ev, s| {
                out(ev);
                starts.push((s.at, s.redact.clone()));
            })
        });
        let all = whole.msgs();
        assert!(all.len() >= 5, "{all:#?}");
        assert_eq!(starts.len(), all.len());
        // Some record began inside the key block: its state says so.
        assert!(starts.iter().any(|(_, st)| st.in_private_key()));
        // The stderr trace around the stdout partial: released together,
        // overlapping, so they share the trace's first line as their point.
        assert_eq!(starts[0].0, starts[1].0);
        assert!(starts.windows(2).any(|w| w[0].0 < w[1].0));
        for (i, (from, state)) in starts.iter().enumerate() {
            let first = starts.iter().position(|(o, _)| o == from).unwrap();
            let skip = offsets.iter().position(|o| o == from).unwrap();
            let mut again = Run::new(Format::Cri, Some(MultilineMode::Auto));
            again.redact = state.clone();
            again.feed(&lines[skip..], *from);
            again.flush();
            assert_eq!(
                again.msgs(),
                all[first..],
                "resumed for event {i} (byte {from})"
            );
        }
    }
}
