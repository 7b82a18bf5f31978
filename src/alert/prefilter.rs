//! The write path's pre-filter: which events could matter to some rule.
//!
//! [`AlertHandle::offer`](super::AlertHandle::offer) runs on the pipeline
//! thread for every event, so an event no rule can match must cost next to
//! nothing; only the others are cloned and queued for the engine, which
//! evaluates the rules in full. The pre-filter may say yes too often (the
//! engine then ignores the event), never too rarely: it is a superset of
//! "some rule's matcher, or a ratio rule's base, matches".
//!
//! Each matcher (a rule's `match`, and a ratio rule's `base`) is a *slot*.
//! - tier and lvl: a table indexed by (tier, lvl) gives the slots whose
//!   tier and lvl conditions hold, one lookup for all rules;
//! - kind and src (string lists, rarely given): compared for the slots that
//!   have them;
//! - msg: every match of a regex starts with one of its prefix literals, or
//!   ends with one of its suffix literals (regex-syntax computes them; the
//!   longer set is kept). All slots' literals, ASCII-lowercased, go into one
//!   Aho-Corasick automaton run over the lowercased message (a
//!   case-insensitive regex gives case variants of one literal; lowercasing
//!   both sides keeps every real occurrence). A slot none of whose literals
//!   occur cannot match. A regex without such literals (`.*x`, `\d+`) keeps
//!   its slot a candidate whenever the fields allow.
//!
//! Ids and `data` conditions are not looked at here (the engine checks
//! them); an event that passes tier, lvl, kind, src and msg is offered.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::rules::{Kind, Matcher, Rule};
use crate::event::{Event, Level, Tier};

const TIERS: [Tier; 5] = [
    Tier::System,
    Tier::Build,
    Tier::Deploy,
    Tier::Action,
    Tier::Lifecycle,
];
const LEVELS: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

fn tier_index(t: Tier) -> usize {
    match t {
        Tier::System => 0,
        Tier::Build => 1,
        Tier::Deploy => 2,
        Tier::Action => 3,
        Tier::Lifecycle => 4,
    }
}

fn level_index(l: Level) -> usize {
    match l {
        Level::Debug => 0,
        Level::Info => 1,
        Level::Warn => 2,
        Level::Error => 3,
    }
}

/// A set of slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Slots(Vec<u64>);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }
    fn and_any(&self, other: &Slots) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }
}

/// The compiled pre-filter of a rule set.
#[derive(Debug, Default)]
pub struct Prefilter {
    slots: usize,
    /// Slots whose tier and lvl conditions hold, by `tier * 4 + lvl`.
    fields: Vec<Slots>,
    /// Slots with kind or src lists: (slot, matcher index).
    strings: Vec<(usize, usize)>,
    matchers: Vec<Matcher>,
    /// Slots whose msg must be checked by literal.
    by_literal: Slots,
    /// By (tier, lvl) like `fields`: an automaton over the lowercased
    /// literals of that entry's literal-checked slots (`None`: there are
    /// none). Any match means some such slot may match.
    literals: Vec<Option<AhoCorasick>>,
}

/// Literals are cut to this many bytes: still a necessary condition (a
/// match that starts with a literal starts with its first bytes), and few
/// enough distinct ones that the automaton's SIMD prefilter (at most 64 or
/// so patterns) skips most of a message.
const LITERAL_LEN: usize = 6;

/// Lowercased literals every match of `pattern` contains (all prefixes or
/// all suffixes, the set whose shortest literal is longer), or `None` when
/// there is no such finite set of non-empty literals.
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut best: Option<(usize, Vec<Vec<u8>>)> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        // A case-insensitive word is many case variants (2^len): allow
        // enough of them for literals of LITERAL_LEN bytes (lowercasing
        // folds them back into a few) and no more: extraction is costly.
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

impl Prefilter {
    pub fn new(rules: &[Rule]) -> Prefilter {
        let mut matchers = Vec::new();
        for r in rules {
            matchers.push(r.matcher.clone());
            if let Kind::Ratio { base, .. } = &r.kind {
                matchers.push(base.clone());
            }
        }
        let n = matchers.len();
        let mut fields = Vec::with_capacity(TIERS.len() * LEVELS.len());
        for &t in &TIERS {
            for &l in &LEVELS {
                let mut s = Slots::new(n);
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
            .map(|i| (i, i))
            .collect();
        let mut by_literal = Slots::new(n);
        let mut slot_lits: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
        for (i, m) in matchers.iter().enumerate() {
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
        let literals = fields
            .iter()
            .map(|cand| {
                let mut pats: Vec<&[u8]> = (0..n)
                    .filter(|&i| cand.has(i) && by_literal.has(i))
                    .flat_map(|i| slot_lits[i].iter().map(Vec::as_slice))
                    .collect();
                pats.sort_unstable();
                pats.dedup();
                if pats.is_empty() {
                    return None;
                }
                // Leftmost-first, so that the packed (Teddy) prefilter is
                // used; only whether something matches is asked.
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(&pats)
                    .ok()
            })
            .collect();
        Prefilter {
            slots: n,
            fields,
            strings,
            matchers,
            by_literal,
            literals,
        }
    }

    /// Could some rule match `e` (or count it as a ratio's base)?
    pub fn could_match(&self, e: &Event) -> bool {
        if self.slots == 0 {
            return false;
        }
        let entry = tier_index(e.tier) * LEVELS.len() + level_index(e.lvl);
        let Some(cand) = self.fields.get(entry) else {
            return true;
        };
        if !cand.any() {
            return false;
        }
        // Kind and src lists are rare: copy the set only to narrow it.
        let mut narrowed;
        let mut cand = cand;
        if !self.strings.is_empty() {
            narrowed = cand.clone();
            for &(slot, m) in &self.strings {
                if narrowed.has(slot) && !self.matchers[m].strings_match(e) {
                    narrowed.0[slot / 64] &= !(1 << (slot % 64));
                }
            }
            cand = &narrowed;
        }
        // A candidate that needs no literal decides it.
        if cand
            .0
            .iter()
            .zip(&self.by_literal.0)
            .any(|(c, l)| c & !l != 0)
        {
            return true;
        }
        if !cand.and_any(&self.by_literal) {
            return false;
        }
        // The entry's automaton holds the literals of every literal-checked
        // slot of this (tier, lvl), a superset of the candidates' when kind
        // or src narrowed them: a match may be a non-candidate's literal,
        // which only offers the event needlessly.
        let Some(Some(ac)) = self.literals.get(entry) else {
            return true;
        };
        LOWER.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.extend(e.msg.bytes().map(|b| b.to_ascii_lowercase()));
            ac.is_match(buf.as_slice())
        })
    }
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
        // Suffixes when the prefixes are useless.
        let l = required_literals(r"[a-z]+ exited").unwrap();
        assert_eq!(l, vec![b"exited".to_vec()]);
    }

    #[test]
    fn prefilter_is_a_superset_of_matching() {
        let rules = vec![
            rule("name='a'\nchannels=['w']\n[match]\nlvl='error'\n"),
            rule("name='b'\nchannels=['w']\n[match]\nmsg='(?i)disk full|No space'\n"),
            rule("name='c'\nchannels=['w']\n[match]\ntier='build'\nmsg='build (failed|errored)'\n"),
            rule("name='d'\nchannels=['w']\n[match]\nsrc='app'\nmsg='x+y'\n"),
            rule("name='e'\nchannels=['w']\n[match]\nkind='k8s'\nmsg='.*z'\n"),
            rule(
                "name='f'\ntype='ratio'\nratio=0.5\nwindow='1m'\nchannels=['w']\n[match]\ntier='deploy'\nmsg='fail'\n[base]\ntier='deploy'\nmsg='(?i)done|FAIL'\n",
            ),
        ];
        let p = Prefilter::new(&rules);
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
        ];
        let mut offered = 0;
        for tier in TIERS {
            for lvl in LEVELS {
                for src in ["app", "other"] {
                    for kind in ["k8s", "line"] {
                        for msg in msgs {
                            let mut e = Event::empty(tier);
                            e.lvl = lvl;
                            e.src = src.into();
                            e.kind = kind.into();
                            e.msg = msg.into();
                            let any = rules.iter().any(|r| {
                                r.matcher.matches(&e)
                                    || matches!(&r.kind, Kind::Ratio { base, .. } if base.matches(&e))
                            });
                            let could = p.could_match(&e);
                            assert!(could || !any, "{tier:?} {lvl:?} {src} {kind} {msg:?}");
                            // Never looser than the old per-rule check.
                            assert!(!could || rules.iter().any(|r| r.could_match(&e)));
                            offered += usize::from(could);
                        }
                    }
                }
            }
        }
        // And it does filter: a benign info line of the system tier is not offered.
        let mut e = Event::empty(Tier::System);
        e.msg = "all good".into();
        assert!(!p.could_match(&e));
        assert!(offered > 0);
        assert!(!Prefilter::new(&[]).could_match(&e));
    }
}
