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
//! - msg: every match of a regex starts with one of its prefix literals, or
//!   ends with one of its suffix literals (regex-syntax computes them; the
//!   longer set is kept). All literals of one (tier, lvl) entry's slots,
//!   ASCII-lowercased, go into one Aho-Corasick automaton run over the
//!   lowercased message (a case-insensitive regex gives case variants of one
//!   literal; lowercasing both sides keeps every real occurrence). When none
//!   occurs, no slot with literals can match and their regexes are not run;
//!   when some does, a second, overlapping search says which slots' literals
//!   occur, and only those slots' regexes run. A regex without such
//!   literals (`.*x`, `\d+`) is always run;
//! - what is left (the regex, ids, `data`) is [`Matcher::matches`] itself,
//!   for the candidates only.

use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Repetition,
};

use super::rules::{Kind, Matcher, Rule};
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

    fn intersects(&self, other: &Hits) -> bool {
        (0..self.words().min(other.words())).any(|w| self.word(w) & other.word(w) != 0)
    }

    /// Add every member of `other`.
    fn union_with(&mut self, other: &Hits) {
        for w in 0..other.words() {
            *self.word_mut(w) |= other.word(w);
        }
    }

    /// Remove every member of `other`.
    fn remove_all(&mut self, other: &Hits) {
        for w in 0..self.words().min(other.words()) {
            *self.word_mut(w) &= !other.word(w);
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
    /// entry's `by_literal` slots (`None`: there are none, or the automata
    /// could not be built). Entries with the same literals share them.
    literals: Vec<Option<Arc<Literals>>>,
    /// Slots whose hit may need the event on the engine.
    wants_event: Hits,
}

/// Literals are cut to this many bytes: still a necessary condition (a
/// match that contains a literal contains its first bytes), and few enough
/// distinct ones that the gate's SIMD prefilter (at most 64 or so patterns)
/// skips most of a message. Longer is worse: the non-ASCII case variants
/// of `k` and `s` (U+212A, U+017F) double the literals per such letter, and
/// 16 bytes (measured) made the literal sets too large for the SIMD search
/// and costly to build.
const LITERAL_LEN: usize = 6;

/// The literals of one set of slots.
#[derive(Debug)]
struct Literals {
    /// Does any occur? (Teddy skips most of a message.)
    gate: AhoCorasick,
    /// Which occur: every occurrence, overlapping (a slower search, run
    /// only when the gate says some does).
    each: AhoCorasick,
    /// Pattern of `each` -> the slots that have it.
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
        // Leftmost-first, so that the packed (Teddy) prefilter is used; only
        // whether something matches is asked, so the automaton behind it
        // need not be a (costly to build) DFA.
        let gate = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&uniq)
            .ok()?;
        // A DFA: the overlapping search walks every byte of the message.
        let each = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&uniq)
            .ok()?;
        Some(Literals { gate, each, slots })
    }

    /// The slots one of whose literals occurs in `hay` (lowercased).
    fn present(&self, hay: &[u8]) -> Hits {
        let mut out = Hits::default();
        if !self.gate.is_match(hay) {
            return out;
        }
        for m in self.each.find_overlapping_iter(hay) {
            if let Some(s) = self.slots.get(m.pattern().as_usize()) {
                out.union_with(s);
            }
        }
        out
    }
}

/// Lowercased literals every match of `pattern` contains (all prefixes or
/// all suffixes, the set whose shortest literal is longer), or `None` when
/// there is no such finite set of non-empty literals.
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    // Extracted from the ASCII-lowercased pattern: a case-insensitive word
    // is then one literal, not 2^len case variants to enumerate and fold.
    let hir = ascii_lowercase(&hir);
    let mut best: Option<(usize, Vec<Vec<u8>>)> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let seq = Extractor::new()
            .kind(kind)
            .limit_literal_len(LITERAL_LEN)
            .limit_total(1024)
            .extract(&hir);
        let Some(lits) = seq.literals() else {
            continue;
        };
        if lits.is_empty() {
            // No match is possible at all; keep the slot a candidate
            // rather than reason about it.
            continue;
        }
        let mut v: Vec<Vec<u8>> = lits
            .iter()
            .map(|l| l.as_bytes().to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        let min = v.iter().map(Vec::len).min().unwrap_or(0);
        if min == 0 {
            continue;
        }
        if best.as_ref().is_none_or(|(m, _)| min > *m) {
            best = Some((min, v));
        }
    }
    best.map(|(_, v)| v)
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
                slot_lits[i] = lits
                    .into_iter()
                    .map(|mut l| {
                        l.truncate(LITERAL_LEN);
                        l
                    })
                    .collect();
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
        // match: one automaton pass over the message rules most out at
        // once. (When the automata could not be built, e.g. too large, it
        // is `None`: the regexes then decide alone.)
        if cand.intersects(&self.by_literal) {
            if let Some(Some(lits)) = self.literals.get(entry) {
                let present = lowercased(&e.msg, |m| lits.present(m));
                let mut absent = self.by_literal.clone();
                absent.remove_all(&present);
                cand.remove_all(&absent);
            }
        }
        if cand.intersects(&self.full) {
            let check = cand.clone();
            for slot in check.iter().filter(|&s| self.full.has(s)) {
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

/// `f` of `msg` ASCII-lowercased, in a buffer reused across events of a
/// thread.
fn lowercased<R>(msg: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    LOWER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        buf.extend_from_slice(msg.as_bytes());
        buf.make_ascii_lowercase();
        f(buf.as_slice())
    })
}

thread_local! {
    /// The lowercased message, reused across events of a thread.
    static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::RuleConfig;

    fn rule(toml_text: &str) -> Rule {
        let c: RuleConfig = toml::from_str(toml_text).unwrap();
        Rule::compile(&c).unwrap()
    }

    #[test]
    fn literals_of_common_patterns() {
        let l = required_literals("(?i)out of memory|OOM").unwrap();
        assert!(l.contains(&b"oom".to_vec()), "{l:?}");
        assert!(l.contains(&b"out of".to_vec()), "{l:?}");
        assert!(l.iter().all(|x| x.iter().all(|c| !c.is_ascii_uppercase())));
        assert!(required_literals(".*").is_none());
        assert!(required_literals(r"\d+").is_none());
        assert!(required_literals("a|").is_none());
        // Case variants fold into one lowercase literal; non-ASCII case
        // variants (the Kelvin sign is a `k`) are kept.
        let l = required_literals("(?i)kill").unwrap();
        assert!(l.contains(&b"kill".to_vec()), "{l:?}");
        assert!(l.contains(&"\u{212A}ill".as_bytes().to_vec()), "{l:?}");
        assert!(l.iter().all(|x| x.iter().all(|c| !c.is_ascii_uppercase())));
        let l = required_literals("Exception|[A-C]x").unwrap();
        assert_eq!(
            l,
            vec![
                b"ax".to_vec(),
                b"bx".to_vec(),
                b"cx".to_vec(),
                b"except".to_vec()
            ]
        );
        // Suffixes when the prefixes are useless.
        let l = required_literals(r"[a-z]+ exited").unwrap();
        assert_eq!(l, vec![b"exited".to_vec()]);
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
        h.remove_all(&g);
        assert!(!h.has(130) && h.has(199));
        h.clear(500);
        assert!(h.any());
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
            rule("name='j'\nchannels=['w']\n"),
        ];
        let idx = RuleIndex::new(&rules);
        let slots = layout(&rules);
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
                                    let mut want = Hits::default();
                                    for (r, s) in rules.iter().zip(&slots) {
                                        if r.matcher.matches(&e) {
                                            want.set(s.hit);
                                        }
                                        if let (Kind::Ratio { base, .. }, Some(b)) =
                                            (&r.kind, s.base)
                                        {
                                            if base.matches(&e) {
                                                want.set(b);
                                            }
                                        }
                                    }
                                    let got = idx.evaluate(&e);
                                    assert_eq!(
                                        got.iter().collect::<Vec<_>>(),
                                        want.iter().collect::<Vec<_>>(),
                                        "{tier:?} {lvl:?} {src} {kind} {build_id:?} {status:?} {msg:?}"
                                    );
                                    hits_seen += got.iter().count();
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
        let idx = RuleIndex::new(&rules[..9]);
        let mut e = Event::empty(Tier::System);
        e.msg = "all good".into();
        assert!(!idx.evaluate(&e).any());
        assert!(!RuleIndex::new(&[]).evaluate(&e).any());
    }
}
