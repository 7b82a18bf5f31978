//! The write path's half of rule evaluation: which of the rules' matchers
//! an event satisfies, decided once per event on the pipeline thread.
//!
//! [`AlertHandle::offer`](super::AlertHandle::offer) runs for every event,
//! so an event no matcher accepts must cost next to nothing, and one that
//! some matcher accepts is not cloned just so the engine can decide again:
//! the engine gets the [`Hits`] (which matchers matched) and the event's
//! `ts`, and the event itself only when a rule it hit may put it in a
//! notification ([`RuleIndex::wants_event`]). The engine task still owns
//! every window, episode and suppression; it no longer matches.
//!
//! Each matcher (a rule's `match`, and a ratio rule's `base`) is a *slot*,
//! numbered by [`layout`] — the one place that numbers them, for this index
//! and for the engine alike. An event's hits are exactly the slots whose
//! [`Matcher::matches`] holds; the index only orders the checks so that most
//! events are done after the cheap ones:
//! - tier and lvl: a table indexed by (tier, lvl) gives the slots whose
//!   tier and lvl conditions hold, one lookup for all rules;
//! - kind and src (string lists, rarely given): compared for the slots that
//!   have them;
//! - msg: for each regex a set of literals one of which every match
//!   contains — its prefixes, its suffixes, or those of an inner part (the
//!   tail of a concatenation, one required piece, per branch of an
//!   alternation), whichever a fixed table of how common bytes and words
//!   are in log text says is rarest, each cut to its rarest window of up
//!   to 12 bytes ([`required_literals`]). All literals of one (tier, lvl)
//!   entry's slots (lowercase) go into one [`Scanner`], run over the
//!   message as it is: a vector pass over case-folded bytes looks for the
//!   literals' fingerprints, and only where one may start are the
//!   literals compared, ASCII case ignored — so the message is neither
//!   copied nor lowercased, and most messages are done after the pass.
//!   (A case-insensitive regex gives case variants of one literal; folding
//!   both sides keeps every real occurrence.) A slot none of whose
//!   literals occurs cannot match and
//!   its regex is not run. A regex without such literals (`.*x`, `\d+`)
//!   is always run;
//! - what is left (the regex, ids, `data`) is [`Matcher::matches`] itself,
//!   for the candidates only.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Repetition,
};

use super::rules::{Kind, Matcher, Rule};
use super::scan::{self, Scanner};
use crate::event::{Event, Level, Tier};

/// A set of slots: the first 64 inline (no allocation for the usual rule
/// set, so a set travels in the engine's queue for free), the rest in
/// `more`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    first: u64,
    more: Vec<u64>,
}

impl Hits {
    fn with_capacity(n: usize) -> Hits {
        Hits {
            first: 0,
            more: vec![0; n.saturating_sub(64).div_ceil(64)],
        }
    }

    #[inline]
    fn word(&self, w: usize) -> u64 {
        if w == 0 {
            self.first
        } else {
            self.more.get(w - 1).copied().unwrap_or(0)
        }
    }

    fn word_mut(&mut self, w: usize) -> &mut u64 {
        if w == 0 {
            return &mut self.first;
        }
        if self.more.len() < w {
            self.more.resize(w, 0);
        }
        &mut self.more[w - 1]
    }

    fn words(&self) -> usize {
        1 + self.more.len()
    }

    pub fn set(&mut self, i: usize) {
        *self.word_mut(i / 64) |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        if i / 64 < self.words() {
            *self.word_mut(i / 64) &= !(1 << (i % 64));
        }
    }

    pub fn has(&self, i: usize) -> bool {
        self.word(i / 64) & (1 << (i % 64)) != 0
    }

    pub fn any(&self) -> bool {
        self.first != 0 || self.more.iter().any(|&w| w != 0)
    }

    #[inline]
    fn intersects(&self, other: &Hits) -> bool {
        if self.first & other.first != 0 {
            return true;
        }
        (1..self.words().min(other.words())).any(|w| self.word(w) & other.word(w) != 0)
    }

    /// Add every member of `other`.
    #[inline]
    fn union_with(&mut self, other: &Hits) {
        self.first |= other.first;
        for w in 1..other.words() {
            *self.word_mut(w) |= other.word(w);
        }
    }

    /// Keep only the members of `other`.
    #[inline]
    fn retain_in(&mut self, other: &Hits) {
        self.first &= other.first;
        for w in 1..self.words() {
            *self.word_mut(w) &= other.word(w);
        }
    }

    /// Remove the members of `checked` that are not in `present`.
    #[inline]
    fn keep_present(&mut self, checked: &Hits, present: &Hits) {
        self.first &= !checked.first | present.first;
        for w in 1..self.words().min(checked.words()) {
            *self.word_mut(w) &= !checked.word(w) | present.word(w);
        }
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.words()).flat_map(move |w| {
            let mut bits = self.word(w);
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// Where rule `i`'s matchers are: `layout(rules)[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSlots {
    /// The rule's `match`.
    pub hit: usize,
    /// A ratio rule's `base`.
    pub base: Option<usize>,
}

/// Number the matchers of `rules`: each rule's `match`, then (ratio rules)
/// its `base`, in rule order — so ascending slots are ascending rules.
pub fn layout(rules: &[Rule]) -> Vec<RuleSlots> {
    let mut next = 0;
    let mut take = || {
        next += 1;
        next - 1
    };
    rules
        .iter()
        .map(|r| {
            let hit = take();
            let base = matches!(r.kind, Kind::Ratio { .. }).then(&mut take);
            RuleSlots { hit, base }
        })
        .collect()
}

/// The compiled matchers of a rule set, indexed for the write path.
#[derive(Debug, Default)]
pub struct RuleIndex {
    matchers: Vec<Matcher>,
    /// Slots whose tier and lvl conditions hold, by `tier * 4 + lvl`.
    fields: Vec<Hits>,
    /// Slots with kind or src lists.
    strings: Vec<usize>,
    /// Slots with a condition beyond tier, lvl, kind and src (ids, msg,
    /// data): [`Matcher::matches`] decides them.
    full: Hits,
    /// Slots whose msg regex has literals (see the module doc).
    by_literal: Hits,
    /// By (tier, lvl) like `fields`: the lowercased literals of that
    /// entry's `by_literal` slots (`None`: there are none). Entries with
    /// the same literals share them.
    literals: Vec<Option<Arc<Literals>>>,
    /// Slots whose hit may need the event on the engine.
    wants_event: Hits,
}

/// The longest literal window kept (see [`window`]): longer only makes a
/// false occurrence rarer, at no cost to the search, but also multiplies
/// the non-ASCII case variants of `k` and `s` (U+212A, U+017F) a window
/// may span.
const WINDOW_MAX: usize = 12;

/// The bytes of a literal that decide how often the scan stops at a false
/// candidate: the [`Scanner`] fingerprints `min(3, shortest literal)`
/// consecutive bytes of each, its rarest.
const FINGERPRINT: usize = scan::FP_MAX;

/// How often a byte occurs in ASCII-lowercased log text, in parts per
/// 10,000: a fixed, rough table (English letter frequencies, log text's
/// digits, spaces and punctuation). It only ranks literal choices.
fn byte_weight(b: u8) -> u32 {
    match b {
        b' ' => 1500,
        b'e' => 800,
        b't' | b'a' | b'o' | b'i' | b'n' => 550,
        b's' | b'r' => 450,
        b'0'..=b'9' => 250,
        b'l' | b'c' | b'd' => 300,
        b'u' | b'm' | b'p' | b'h' | b'.' => 200,
        b'g' | b'f' | b':' => 150,
        b'b' | b'w' | b'y' | b'/' | b'-' | b'_' => 100,
        b'v' | b'k' | b'=' | b',' | b'"' | b'[' | b']' => 60,
        b'(' | b')' | b'x' | b'\'' => 30,
        b'j' | b'q' | b'z' => 15,
        // Non-ASCII: as common as a letter, so that windows do not seek out
        // the case variants (which would multiply literals, not thin them).
        0x80..=0xff => 300,
        _ => 10,
    }
}

/// The chance that `bytes` occur at a position of log text, by
/// [`byte_weight`].
fn chance(bytes: &[u8]) -> f64 {
    bytes
        .iter()
        .map(|&b| f64::from(byte_weight(b)) / 10_000.0)
        .product()
}

/// A regex run after a literal occurred, in candidate stops.
const RUN_COST: f64 = 4.0;

/// Letters alone do not know that some words fill logs: a fingerprint
/// inside one of these costs this many times more.
const COMMON_WORD_COST: f64 = 100.0;

/// Words that fill log lines, lowercased.
const COMMON_WORDS: &[&[u8]] = &[
    b"connection",
    b"failed",
    b"error",
    b"invalid",
    b"service",
    b"process",
    b"memory",
    b"session",
    b"request",
    b"response",
    b"server",
    b"client",
    b"warning",
    b"info",
    b"exception",
    b"started",
    b"stopped",
    b"timeout",
    b"file",
    b"user",
    b"http/1.",
    b"status",
    b"successful",
    b"kernel",
    b"worker",
    b"password",
    b"received",
    b"block",
    b"node",
    b"application",
    b"using",
    b"true",
    b"false",
    b"null",
];

/// The commonest trigrams of English text, which log messages are made of
/// too (their unigram chances underrate them): a fingerprint that is one
/// costs [`COMMON_WORD_COST`] times more, like one in a common word.
const COMMON_TRIGRAMS: &[&[u8; 3]] = &[
    b"the", b"and", b"ing", b"ion", b"tio", b"ent", b"ati", b"for", b"her", b"ter", b"hat", b"tha",
    b"ere", b"ate", b"his", b"con", b"res", b"ver", b"all", b"ons", b"nce", b"men", b"ith", b"ted",
    b"ers", b"pro", b"thi", b"wit", b"are", b"ess", b"not", b"ive", b"was", b"ect", b"rea", b"com",
    b"eve", b"per", b"int", b"est", b"sta", b"cti", b"ica", b"ist", b"ear", b"ain", b"one", b"our",
    b"iti", b"rat", b"ork", b"ame", b"ine", b"ure", b"der", b"str", b"tor", b"ble", b"man", b"ran",
];

/// What one fingerprint (see [`Scanner::new`]) costs per message position:
/// the chance of its bytes, [`COMMON_WORD_COST`] times more when a
/// [`COMMON_WORDS`] word holds it.
fn gram_cost(g: &[u8]) -> f64 {
    let common = match <[u8; FINGERPRINT]>::try_from(g) {
        Ok(g) => COMMON_GRAMS.binary_search(&g).is_ok(),
        Err(_) => COMMON_WORDS
            .iter()
            .any(|w| w.windows(g.len()).any(|x| x == g)),
    };
    chance(g) * if common { COMMON_WORD_COST } else { 1.0 }
}

/// The fingerprints [`COMMON_WORDS`] hold, and [`COMMON_TRIGRAMS`],
/// sorted.
static COMMON_GRAMS: LazyLock<Vec<[u8; FINGERPRINT]>> = LazyLock::new(|| {
    let mut v: Vec<[u8; FINGERPRINT]> = COMMON_WORDS
        .iter()
        .flat_map(|w| w.windows(FINGERPRINT))
        .filter_map(|g| g.try_into().ok())
        .chain(COMMON_TRIGRAMS.iter().map(|&&g| g))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
});

/// How often a byte folded by the scan (`x | 0x20`) occurs: by
/// [`byte_weight`] of the lowercase text it stands for.
fn folded_chance(b: u8) -> f64 {
    if b & 0x20 == 0 {
        return 0.0;
    }
    f64::from(byte_weight(b)) / 10_000.0
}

/// The part of `lit` to search for, and its cost: any substring of a
/// literal every match contains is one too, so take the cheapest of its
/// windows of up to [`WINDOW_MAX`] bytes. What a window costs per message
/// position: a candidate stop when its rarest fingerprint occurs (by
/// [`gram_cost`]; times 4 per byte the literal is short of
/// [`FINGERPRINT`]: a short literal shortens every literal's fingerprint in
/// the same scan), and a regex run, about [`RUN_COST`] stops, when the
/// whole window occurs.
fn window(lit: &[u8]) -> (&[u8], f64) {
    // A non-ASCII byte is most likely part of a case variant (`ſ` for `s`,
    // the Kelvin sign for `k`): a window in an ASCII run of the variant is
    // also (or is in) a window of the plain literal, and the set of them
    // collapses ([`Choice::new`]).
    let runs: Vec<(usize, usize)> = lit
        .split(|b| !b.is_ascii())
        .scan(0, |at, run| {
            let start = *at;
            *at += run.len() + 1;
            Some((start, start + run.len()))
        })
        .filter(|&(a, b)| b - a >= FINGERPRINT)
        .collect();
    if runs.is_empty() || runs == [(0, lit.len())] {
        return window_in(lit, 0, lit.len());
    }
    runs.into_iter()
        .map(|(a, b)| window_in(lit, a, b))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap_or_else(|| window_in(lit, 0, lit.len()))
}

/// [`window`] within `lit[from..to]`.
fn window_in(lit: &[u8], from: usize, to: usize) -> (&[u8], f64) {
    let lit = &lit[from..to];
    let fp = FINGERPRINT.min(lit.len());
    let short = (FINGERPRINT - fp) as i32;
    let grams: Vec<f64> = (0..=lit.len() - fp)
        .map(|g| gram_cost(&lit[g..g + fp]))
        .collect();
    let mut best: (f64, usize, usize) = (f64::INFINITY, 0, lit.len());
    for s in 0..grams.len() {
        let end = lit.len().min(s + WINDOW_MAX);
        let stop = grams[s..=end - fp]
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let c = stop * 4f64.powi(short) + RUN_COST * chance(&lit[s..end]);
        if c < best.0 {
            best = (c, s, end);
        }
    }
    (&lit[best.1..best.2], best.0)
}

/// [`window`]s already chosen while choosing one regex's literals (the
/// tails of a concatenation share most of theirs).
#[derive(Default)]
struct Windows(HashMap<Vec<u8>, (Vec<u8>, f64)>);

impl Windows {
    fn of(&mut self, lit: &[u8]) -> (Vec<u8>, f64) {
        if let Some(w) = self.0.get(lit) {
            return w.clone();
        }
        let (w, c) = window(lit);
        let w = (w.to_vec(), c);
        self.0.insert(lit.to_vec(), w.clone());
        w
    }
}

/// A set of literals one of which every match contains, and what searching
/// for their windows costs.
struct Choice {
    lits: Vec<Vec<u8>>,
    cost: f64,
}

impl Choice {
    fn new(lits: Vec<Vec<u8>>, windows: &mut Windows) -> Option<Choice> {
        if lits.is_empty() || lits.iter().any(Vec::is_empty) {
            // No match possible, or one that needs no literal: keep the
            // slot a candidate rather than reason about it.
            return None;
        }
        let mut costed: Vec<(Vec<u8>, f64)> = lits.iter().map(|l| windows.of(l)).collect();
        costed.sort_by(|a, b| a.0.cmp(&b.0));
        costed.dedup_by(|a, b| a.0 == b.0);
        // A literal that holds another one of the set adds nothing: where
        // it occurs, so does the other.
        let holds = |long: &[u8], short: &[u8]| {
            long.len() > short.len() && long.windows(short.len()).any(|w| w == short)
        };
        let redundant: Vec<bool> = costed
            .iter()
            .map(|(l, _)| costed.iter().any(|(o, _)| holds(l, o)))
            .collect();
        let mut keep = redundant.iter().map(|r| !r);
        costed.retain(|_| keep.next().unwrap_or(true));
        // A constant per literal, so that of two equally rare sets the
        // smaller wins (every literal is a pattern in the searcher).
        let cost = costed.iter().map(|(_, c)| c + 1e-9).sum();
        let lits = costed.into_iter().map(|(l, _)| l).collect();
        Some(Choice { lits, cost })
    }

    /// `a` or `b`, whichever is cheaper.
    fn cheaper(a: Option<Choice>, b: Option<Choice>) -> Option<Choice> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.cost < a.cost { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// The prefix (or suffix) literals of `h`, when they are a finite set.
fn extracted(h: &Hir, kind: ExtractKind, windows: &mut Windows) -> Option<Choice> {
    let seq = Extractor::new()
        .kind(kind)
        .limit_literal_len(2 * WINDOW_MAX)
        // A class of more than a few bytes ends a literal: `[0-9]` would
        // multiply a set tenfold for windows hardly rarer.
        .limit_class(4)
        // More literals than Teddy takes (64) would not be chosen anyway.
        .limit_total(64)
        .extract(h);
    let lits = seq.literals()?;
    Choice::new(
        lits.iter()
            .map(|l| l.as_bytes().to_ascii_lowercase())
            .collect(),
        windows,
    )
}

/// The cheapest set of literals one of which every match of `h` contains:
/// its prefixes or suffixes, those of any tail of a concatenation (inner
/// literals: a match of `ab` contains a match of `b`), a required part's
/// own choice, or for an alternation the union of its branches' choices.
fn cheapest(h: &Hir, windows: &mut Windows) -> Option<Choice> {
    let mut best = Choice::cheaper(
        extracted(h, ExtractKind::Prefix, windows),
        extracted(h, ExtractKind::Suffix, windows),
    );
    match h.kind() {
        HirKind::Concat(v) => {
            for i in 0..v.len() {
                if i > 0 {
                    let tail = Hir::concat(v[i..].to_vec());
                    best = Choice::cheaper(best, extracted(&tail, ExtractKind::Prefix, windows));
                }
                best = Choice::cheaper(best, cheapest(&v[i], windows));
            }
        }
        HirKind::Alternation(v) => {
            let mut all = Vec::new();
            for b in v {
                match cheapest(b, windows) {
                    Some(c) => all.extend(c.lits),
                    None => return best,
                }
            }
            best = Choice::cheaper(best, Choice::new(all, windows));
        }
        HirKind::Capture(c) => best = Choice::cheaper(best, cheapest(&c.sub, windows)),
        HirKind::Repetition(r) if r.min >= 1 => {
            best = Choice::cheaper(best, cheapest(&r.sub, windows));
        }
        _ => {}
    }
    best
}

/// Lowercased literals one of which every match of `pattern` contains —
/// chosen to be rare in log text (see [`cheapest`]) — or `None` when there
/// is no such finite set of non-empty literals.
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    // Extracted from the ASCII-lowercased pattern: a case-insensitive word
    // is then one literal, not 2^len case variants to enumerate and fold.
    let hir = ascii_lowercase(&hir);
    cheapest(&hir, &mut Windows::default()).map(|c| c.lits)
}

/// The literals of one set of slots, found in one pass over the message.
#[derive(Debug)]
struct Literals {
    scanner: Scanner,
    /// Literal of `scanner` -> the slots that have it.
    slots: Vec<Hits>,
}

impl Literals {
    fn build(pats: &[(&[u8], usize)], n: usize) -> Option<Literals> {
        let mut uniq: Vec<&[u8]> = pats.iter().map(|&(p, _)| p).collect();
        uniq.sort_unstable();
        uniq.dedup();
        if uniq.is_empty() {
            return None;
        }
        let mut slots = vec![Hits::with_capacity(n); uniq.len()];
        for &(p, slot) in pats {
            if let Ok(i) = uniq.binary_search(&p) {
                slots[i].set(slot);
            }
        }
        let scanner = Scanner::new(&uniq, gram_cost, folded_chance)?;
        Some(Literals { scanner, slots })
    }

    /// The slots one of whose literals occurs in `hay`, ASCII case
    /// ignored.
    fn present(&self, hay: &[u8]) -> Hits {
        let mut out = Hits::default();
        self.scanner
            .scan(hay, &mut |i| out.union_with(&self.slots[i]));
        out
    }
}

/// `h` with every ASCII uppercase letter it can match replaced by its
/// lowercase (other characters kept). Every match `m` of `h` in a haystack
/// is, ASCII-lowercased, a match of the result in the lowercased haystack —
/// so the result's required literals are present in the lowercased
/// haystack whenever `h` matches. Used for extraction only, never to match.
fn ascii_lowercase(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0.to_ascii_lowercase()),
        HirKind::Class(Class::Unicode(c)) => {
            let mut out = ClassUnicode::empty();
            for r in c.ranges() {
                for (a, b) in split_upper(u32::from(r.start()), u32::from(r.end())) {
                    if let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b)) {
                        out.push(ClassUnicodeRange::new(a, b));
                    }
                }
            }
            Hir::class(Class::Unicode(out))
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut out = ClassBytes::empty();
            for r in c.ranges() {
                for (a, b) in split_upper(u32::from(r.start()), u32::from(r.end())) {
                    if let (Ok(a), Ok(b)) = (u8::try_from(a), u8::try_from(b)) {
                        out.push(ClassBytesRange::new(a, b));
                    }
                }
            }
            Hir::class(Class::Bytes(out))
        }
        HirKind::Look(l) => Hir::look(*l),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(ascii_lowercase(&r.sub)),
        }),
        HirKind::Capture(c) => Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(ascii_lowercase(&c.sub)),
        }),
        HirKind::Concat(v) => Hir::concat(v.iter().map(ascii_lowercase).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(ascii_lowercase).collect()),
    }
}

/// The range `a..=b` of code points with its part in `A..=Z` moved to
/// `a..=z`: at most three ranges.
fn split_upper(a: u32, b: u32) -> impl Iterator<Item = (u32, u32)> {
    let (upper_a, upper_z) = (u32::from(b'A'), u32::from(b'Z'));
    let below = (a < upper_a).then(|| (a, b.min(upper_a - 1)));
    let upper = (a <= upper_z && b >= upper_a).then(|| (a.max(upper_a) + 32, b.min(upper_z) + 32));
    let above = (b > upper_z).then(|| (a.max(upper_z + 1), b));
    [below, upper, above].into_iter().flatten()
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> RuleIndex {
        let slots = layout(rules);
        let mut matchers = Vec::new();
        let mut wants_event = Hits::default();
        for (r, s) in rules.iter().zip(&slots) {
            matchers.push(r.matcher.clone());
            if let Kind::Ratio { base, .. } = &r.kind {
                matchers.push(base.clone());
            }
            // An absence notification has no event; every other rule fires
            // with the event that made its condition hold (a ratio's base
            // event can: it may lift the base to `min_base`).
            if !matches!(r.kind, Kind::Absence { .. }) {
                wants_event.set(s.hit);
                if let Some(b) = s.base {
                    wants_event.set(b);
                }
            }
        }
        let n = matchers.len();
        let mut fields = Vec::with_capacity(Tier::ALL.len() * Level::ALL.len());
        for &t in &Tier::ALL {
            for &l in &Level::ALL {
                let mut s = Hits::with_capacity(n);
                for (i, m) in matchers.iter().enumerate() {
                    if m.tier_lvl_match(t, l) {
                        s.set(i);
                    }
                }
                fields.push(s);
            }
        }
        let strings = (0..n)
            .filter(|&i| matchers[i].has_string_conditions())
            .collect();
        let mut full = Hits::with_capacity(n);
        let mut by_literal = Hits::with_capacity(n);
        let mut slot_lits: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
        for (i, m) in matchers.iter().enumerate() {
            if m.has_full_conditions() {
                full.set(i);
            }
            // Without literals (or without a msg condition) the slot stays
            // a candidate whenever its fields allow.
            if let Some(lits) = m.msg_pattern().and_then(required_literals) {
                slot_lits[i] = lits;
                by_literal.set(i);
            }
        }
        // Most (tier, lvl) entries have the same literal slots: one set of
        // automata per distinct set.
        let mut built: HashMap<Vec<usize>, Option<Arc<Literals>>> = HashMap::new();
        let literals = fields
            .iter()
            .map(|cand| {
                let lit_slots: Vec<usize> = (0..n)
                    .filter(|&i| cand.has(i) && by_literal.has(i))
                    .collect();
                built
                    .entry(lit_slots)
                    .or_insert_with_key(|lit_slots| {
                        let pats: Vec<(&[u8], usize)> = lit_slots
                            .iter()
                            .flat_map(|&i| slot_lits[i].iter().map(move |l| (l.as_slice(), i)))
                            .collect();
                        Literals::build(&pats, n).map(Arc::new)
                    })
                    .clone()
            })
            .collect();
        RuleIndex {
            matchers,
            fields,
            strings,
            full,
            by_literal,
            literals,
            wants_event,
        }
    }

    /// The slots whose matcher matches `e`: exactly those, in one pass.
    pub fn evaluate(&self, e: &Event) -> Hits {
        let entry = e.tier.index() * Level::ALL.len() + e.lvl.index();
        let Some(fields) = self.fields.get(entry) else {
            return Hits::default();
        };
        if !fields.any() {
            return Hits::default();
        }
        let mut cand = fields.clone();
        // Kind and src lists are rare.
        for &slot in &self.strings {
            if cand.has(slot) && !self.matchers[slot].strings_match(e) {
                cand.clear(slot);
            }
        }
        // A literal-checked slot none of whose literals occurs cannot
        // match: one literal search over the message rules most out at
        // once. (When the searcher could not be built it is `None`: the
        // regexes then decide alone.)
        if cand.intersects(&self.by_literal) {
            if let Some(Some(lits)) = self.literals.get(entry) {
                let present = lits.present(e.msg.as_bytes());
                cand.keep_present(&self.by_literal, &present);
            }
        }
        if cand.intersects(&self.full) {
            let mut check = cand.clone();
            check.retain_in(&self.full);
            for slot in check.iter() {
                if !self.matchers[slot].matches(e) {
                    cand.clear(slot);
                }
            }
        }
        cand
    }

    /// Does a hit on one of `hits` need the event itself on the engine (as
    /// a notification's event or fingerprint), not only its `ts`?
    pub fn wants_event(&self, hits: &Hits) -> bool {
        hits.intersects(&self.wants_event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::RuleConfig;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        memchr::memmem::find(hay, needle).is_some()
    }

    fn rule(toml_text: &str) -> Rule {
        let c: RuleConfig = toml::from_str(toml_text).unwrap();
        Rule::compile(&c).unwrap()
    }

    /// Every match contains one of the literals (in the lowercased
    /// haystack), and they are lowercase.
    #[test]
    fn literals_are_required() {
        let cases: &[(&str, &[&str])] = &[
            (
                "(?i)out of memory|OOM",
                &["Out Of Memory here", "oom", "x OOM y"],
            ),
            ("(?i)kill", &["KILL", "\u{212A}ill"]),
            ("Exception|[A-C]x", &["an Exception", "Bx", "xx Ax"]),
            (r"[a-z]+ exited", &["worker exited"]),
            (r"\d+ segfault at \d+", &["[9] 17 segfault at 0 ip"]),
            (
                "(?i)(service|unit) .{0,40}(restarted|terminated)",
                &[
                    "Service foo Restarted",
                    "unit x terminated",
                    "UNIT  TERMINATED",
                ],
            ),
            (
                r#"HTTP/1\.[01]" 5[0-9][0-9] "#,
                &[r#"GET / HTTP/1.1" 503 12"#],
            ),
            (
                "(?i)redis.{0,60}(disconnect|unreachable)",
                &["REDIS host unreachable", "redis: disconnect"],
            ),
            (
                "(?i)roll(ed|ing)? ?back",
                &["Rolled back", "rollback", "ROLLING BACK"],
            ),
        ];
        for (p, hays) in cases {
            let lits = required_literals(p).unwrap_or_else(|| panic!("{p}: no literals"));
            assert!(
                lits.iter()
                    .all(|l| !l.is_empty() && !l.iter().any(u8::is_ascii_uppercase)),
                "{p}: {lits:?}"
            );
            let re = regex::Regex::new(p).unwrap();
            for h in *hays {
                assert!(re.is_match(h), "{p} does not match {h:?}");
                let low = h.to_ascii_lowercase();
                assert!(
                    lits.iter().any(|l| contains(low.as_bytes(), l)),
                    "{p}: none of {lits:?} in {h:?}"
                );
            }
        }
        assert!(required_literals(".*").is_none());
        assert!(required_literals(r"\d+").is_none());
        assert!(required_literals("a|").is_none());
        // Inner literals: the part between the classes, not nothing.
        let l = required_literals(r"\d+ segfault at \d+").unwrap();
        assert!(l.iter().all(|x| contains(b" segfault at ", x)), "{l:?}");
        // Non-ASCII case variants (the Kelvin sign is a `k`) are found: by
        // a window in their ASCII part, which every variant holds (and
        // then the plain literal adds nothing).
        let l = required_literals("(?i)kill").unwrap();
        assert_eq!(l, [b"ill".to_vec()]);
        let l = required_literals("(?i)sſl").unwrap();
        assert!(l.contains(&"sſl".as_bytes().to_vec()), "{l:?}");
        assert!(l.contains(&"ſſl".as_bytes().to_vec()), "{l:?}");
        // A rare inner part beats a common prefix, and a literal is cut to
        // a window of its rarest bytes.
        let l = required_literals("(?i)process .{0,40}segfault").unwrap();
        assert!(l.iter().all(|x| contains(b"segfault", x)), "{l:?}");
        let l = required_literals("core dumped by the kernel on request").unwrap();
        assert!(l.iter().all(|x| x.len() <= WINDOW_MAX), "{l:?}");
    }

    #[test]
    fn layout_numbers_matches_then_bases_in_rule_order() {
        let rules = vec![
            rule("name='a'\nchannels=['w']\n"),
            rule("name='r'\ntype='ratio'\nratio=0.5\nwindow='1m'\nchannels=['w']\n[base]\ntier='build'\n"),
            rule("name='b'\ntype='absence'\nwindow='1m'\nchannels=['w']\n"),
        ];
        let l = layout(&rules);
        assert_eq!(
            l,
            [
                RuleSlots { hit: 0, base: None },
                RuleSlots {
                    hit: 1,
                    base: Some(2)
                },
                RuleSlots { hit: 3, base: None },
            ]
        );
        let idx = RuleIndex::new(&rules);
        let one = |s| {
            let mut h = Hits::default();
            h.set(s);
            h
        };
        assert!(idx.wants_event(&one(0)) && idx.wants_event(&one(1)) && idx.wants_event(&one(2)));
        assert!(!idx.wants_event(&one(3)), "an absence hit needs no event");
    }

    #[test]
    fn hits_beyond_64_slots() {
        let mut h = Hits::with_capacity(200);
        for i in [0, 63, 64, 130, 199] {
            h.set(i);
        }
        assert_eq!(h.iter().collect::<Vec<_>>(), [0, 63, 64, 130, 199]);
        let mut g = Hits::default();
        g.set(130);
        assert!(h.intersects(&g) && g.intersects(&h));
        h.keep_present(&g, &Hits::default());
        assert!(!h.has(130) && h.has(199) && h.has(0));
        let mut kept = h.clone();
        kept.retain_in(&g);
        assert!(!kept.any());
        g.set(199);
        g.set(0);
        kept = h.clone();
        kept.retain_in(&g);
        assert_eq!(kept.iter().collect::<Vec<_>>(), [0, 199]);
        h.clear(500);
        assert!(h.any());
    }

    /// Assert that the write path's hits on `e` are the slots whose
    /// matcher matches it; their number.
    fn same_as_matching(idx: &RuleIndex, rules: &[Rule], e: &Event) -> usize {
        let mut want = Hits::default();
        for (r, s) in rules.iter().zip(&layout(rules)) {
            if r.matcher.matches(e) {
                want.set(s.hit);
            }
            if let (Kind::Ratio { base, .. }, Some(b)) = (&r.kind, s.base) {
                if base.matches(e) {
                    want.set(b);
                }
            }
        }
        let got = idx.evaluate(e);
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want.iter().collect::<Vec<_>>(),
            "{:?} {:?} {} {} {:?} {:?}",
            e.tier,
            e.lvl,
            e.src,
            e.kind,
            e.build_id,
            e.msg
        );
        got.iter().count()
    }

    /// The write-path decision is the engine's old matching, slot by slot:
    /// every rule's `match` and every ratio's `base`, over tiers x levels x
    /// kinds x srcs x ids x messages.
    #[test]
    fn hits_equal_matching() {
        let rules = vec![
            rule("name='a'\nchannels=['w']\n[match]\nlvl='error'\n"),
            rule("name='b'\nchannels=['w']\n[match]\nmsg='(?i)disk full|No space'\n"),
            rule("name='c'\nchannels=['w']\n[match]\ntier='build'\nmsg='build (failed|errored)'\n"),
            rule("name='d'\nchannels=['w']\n[match]\nsrc='app'\nmsg='x+y'\n"),
            rule("name='e'\nchannels=['w']\n[match]\nkind='k8s'\nmsg='.*z'\n"),
            rule(
                "name='f'\ntype='ratio'\nratio=0.5\nwindow='1m'\nchannels=['w']\n[match]\ntier='deploy'\nmsg='fail'\n[base]\ntier='deploy'\nmsg='(?i)done|FAIL'\n",
            ),
            rule("name='g'\ntype='threshold'\ncount=2\nwindow='1m'\nchannels=['w']\n[match]\nlvl=['warn','error']\nmsg='(?i)\\bfatal\\b|segfault'\n"),
            rule("name='h'\ntype='absence'\nwindow='1m'\nchannels=['w']\n[match]\nkind='line'\nbuild_id={exists=true}\n"),
            rule("name='i'\nchannels=['w']\n[match]\nmsg='(?i)build'\ndata.status={equals='failed'}\n"),
            rule("name='k'\nchannels=['w']\n[match]\nmsg='(?i)\\d+ segfault at|Kernel panic'\n"),
            rule("name='l'\nchannels=['w']\n[match]\nmsg='ab'\n"),
            rule("name='m'\nchannels=['w']\n[match]\nmsg='(?i)abc'\n"),
            rule("name='n'\nchannels=['w']\n[match]\nmsg='bcd'\n"),
            rule("name='o'\nchannels=['w']\n[match]\nmsg='(?i)(service|unit) .{0,20}restart(ed|ing)'\n"),
            rule("name='j'\nchannels=['w']\n"),
        ];
        let idx = RuleIndex::new(&rules);
        let msgs = [
            "all good",
            "DISK FULL on /var",
            "no space left",
            "build failed",
            "Build Failed",
            "xxy",
            "zzz",
            "Deploy DONE",
            "deploy fail",
            "",
            "ü disk full ü",
            "FATAL: segfault in worker",
            "not fatalistic",
            "pid 7 segfault at 0",
            "KERNEL PANIC - not syncing",
            "xabcx",
            "xABcd",
            "ab",
            "abcd",
            "Unit foo.service Restarting",
            "unit restarted",
        ];
        let mut hits_seen = 0;
        for tier in Tier::ALL {
            for lvl in Level::ALL {
                for src in ["app", "other"] {
                    for kind in ["k8s", "line"] {
                        for build_id in [None, Some("b1")] {
                            for status in [None, Some("failed")] {
                                for msg in msgs {
                                    let mut e = Event::empty(tier);
                                    e.lvl = lvl;
                                    e.src = src.into();
                                    e.kind = kind.into();
                                    e.msg = msg.into();
                                    e.build_id = build_id.map(String::from);
                                    e.data = status.map(|s| {
                                        let mut m = serde_json::Map::new();
                                        m.insert("status".into(), s.into());
                                        m
                                    });
                                    hits_seen += same_as_matching(&idx, &rules, &e);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(hits_seen > 0);
        // Rule 'j' (no conditions) matches everything; without it, a benign
        // info line of the system tier hits nothing.
        let idx = RuleIndex::new(&rules[..rules.len() - 1]);
        let mut e = Event::empty(Tier::System);
        e.msg = "all good".into();
        assert!(!idx.evaluate(&e).any());
        assert!(!RuleIndex::new(&[]).evaluate(&e).any());
    }

    /// The same over messages the vector scan finds hard: a literal (or
    /// the start or end of one) at every place around its 32-byte steps
    /// and the ends of short and long messages, in every case, next to
    /// fragments of other literals, cut short, and split by a byte; for a
    /// rule set with short literals (1- and 2-byte fingerprints), one
    /// without (3 bytes), and the benchmark's 20 rules.
    #[test]
    fn hits_equal_matching_anywhere_in_any_case() {
        let mixed: Vec<Rule> = [
            "name='b'\nchannels=['w']\n[match]\nmsg='(?i)disk full|No space'\n",
            "name='c'\nchannels=['w']\n[match]\nmsg='build (failed|errored)'\n",
            "name='g'\nchannels=['w']\n[match]\nlvl=['warn','error']\nmsg='(?i)\\bfatal\\b|segfault'\n",
            "name='k'\nchannels=['w']\n[match]\nmsg='(?i)\\d+ segfault at|Kernel panic'\n",
            "name='l'\nchannels=['w']\n[match]\nmsg='ab'\n",
            "name='m'\nchannels=['w']\n[match]\nmsg='(?i)abc'\n",
            "name='q'\nchannels=['w']\n[match]\nmsg='(?i)q'\n",
            "name='o'\nchannels=['w']\n[match]\nmsg='(?i)(service|unit) .{0,20}restart(ed|ing)'\n",
            "name='r'\nchannels=['w']\n[match]\nmsg='Exception|Caused by:'\n",
        ]
        .iter()
        .map(|t| rule(t))
        .collect();
        let long: Vec<Rule> = mixed
            .iter()
            .filter(|r| !matches!(r.name.as_str(), "l" | "m" | "q"))
            .cloned()
            .collect();
        let text = include_str!("../../bench/alerts20.toml");
        let loaded =
            crate::config::load_str(std::path::Path::new("alerts20.toml"), text.into(), &|_| {
                None
            })
            .unwrap();
        let bench: Vec<Rule> = loaded
            .config
            .alerts
            .rules
            .iter()
            .map(|r| Rule::compile(r).unwrap())
            .collect();
        assert_eq!(bench.len(), 20);
        let cores = [
            "disk full",
            "No space",
            "build failed",
            "build errored",
            "fatal",
            "segfault",
            "17 segfault at",
            "Kernel panic",
            "\u{212A}ernel panic",
            "ab",
            "abc",
            "q",
            "unit x restarted",
            "service foo.service restarting",
            "Exception",
            "Caused by:",
            "Failed password for root",
            "authentication failure;",
            "Invalid user admin",
            "connection refused",
            "ECONNREFUSED",
            "GET / HTTP/1.1\" 503 12",
            "GET / HTTP/1.0\" 200 12",
            "out of memory",
            "oom-killer",
            "No space left on device",
            "heartbeat",
            "ssl handshake failed",
            "hmac verification failed",
            "redis at 10.0.0.1 unreachable",
            "panicked at",
            "Oops: 0000",
            "kernel BUG at mm/slab.c",
            "core dumped",
            "SIGSEGV",
            "process 7 exited with code 1",
        ];
        let mut msgs: Vec<String> = Vec::new();
        for core in cores {
            let n = core.chars().count();
            let cut = |k: usize| core.chars().take(k).collect::<String>();
            let tail = |k: usize| core.chars().skip(k).collect::<String>();
            let variants = [
                core.to_string(),
                core.to_uppercase(),
                core.to_lowercase(),
                core.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect(),
                // Cut short, split by a byte, two halves of two literals.
                cut(n - 1),
                tail(1),
                format!("{}_{}", cut(n / 2), tail(n / 2)),
                format!("{}{}", cut(n / 2), &cores[(n + 3) % cores.len()]),
            ];
            for v in variants {
                for pad in [0, 1, 2, 29, 30, 31, 32, 33, 34, 62, 63, 64, 65, 66, 97] {
                    msgs.push(format!("{}{v}", "-".repeat(pad)));
                    msgs.push(format!("{v}{}", ".".repeat(pad)));
                    msgs.push(format!("{}{v}{}", "x".repeat(pad), "y".repeat(97 - pad)));
                }
            }
        }
        let mut hits_seen = [0; 3];
        for (set, rules) in [&mixed, &long, &bench].into_iter().enumerate() {
            let idx = RuleIndex::new(rules);
            for tier in Tier::ALL {
                for lvl in Level::ALL {
                    for msg in &msgs {
                        let mut e = Event::empty(tier);
                        e.lvl = lvl;
                        e.msg = msg.clone();
                        hits_seen[set] += same_as_matching(&idx, rules, &e);
                    }
                }
            }
        }
        assert!(hits_seen.iter().all(|&h| h > 1000), "{hits_seen:?}");
    }
}
