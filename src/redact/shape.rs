//! Token shapes: an anchored provider rule's regex, checked by hand at a
//! keyword hit.
//!
//! Most anchored rules are a keyword followed by runs of an ASCII class
//! (`ghp_` + 36 letters and digits + `\b`, `AKIA` + 16 of `[A-Z2-7]`,
//! `Bearer` + blanks + a token). A regex call per hit costs about a
//! thousand instructions whatever the token; counting the run by hand costs
//! a few per byte (on `dense_providers` these calls were about a sixth of
//! all instructions, callgrind). The regex stays the definition: the
//! shape is *derived* from it ([`Alternatives::of`] through `regex-syntax`'s
//! HIR, then [`Shape::after`] a keyword), and only for regexes where a
//! greedy walk without backtracking gives the regex's own (leftmost-first)
//! match; any other regex keeps its regex call. A shape also answers [`Verdict::Unsure`] where the answer depends
//! on Unicode (`\b` before a non-ASCII character): the engine then runs the
//! regex. A test compares the two over generated tokens.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A set of ASCII bytes.
type Set = u128;

/// `[A-Za-z0-9_]`: what `\b` calls a word character among ASCII bytes.
const WORD: Set = {
    let mut s = 0u128;
    let mut b = 0u8;
    while b < 128 {
        if b.is_ascii_alphanumeric() || b == b'_' {
            s |= 1 << b;
        }
        b += 1;
    }
    s
};

fn has(set: Set, b: u8) -> bool {
    b < 128 && (set >> b) & 1 == 1
}

/// One step of a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// `min..=max` bytes of `set`, as many as there are (greedy).
    Run { set: Set, min: u32, max: u32 },
    /// `\b` (Unicode): decided by hand only next to an ASCII byte or the end.
    WordEnd,
}

/// What a shape says about the text at a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The regex matches `hay[..end]`.
    Match(usize),
    /// The regex does not match here.
    NoMatch,
    /// Only the regex can tell (`\b` before a non-ASCII character).
    Unsure,
}

/// A piece as [`Shape::find`] walks it.
#[derive(Clone, Debug)]
enum Step {
    /// A run, its set as a table by byte: a load and a test a byte, where
    /// the 128-bit set took several instructions more (callgrind).
    Run {
        table: Box<[bool; 256]>,
        min: u32,
        max: u32,
    },
    WordEnd,
}

/// An anchored rule's regex after one of its keywords.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The keyword's length: the text at a hit starts with it.
    skip: usize,
    /// The alternatives that can start with the keyword, in the regex's
    /// order of preference.
    alts: Box<[Box<[Step]>]>,
    #[cfg(test)]
    pieces: Vec<Vec<Piece>>,
}

/// Alternatives a regex expands to (in the regex's order of preference) at
/// most, before [`Alternatives::of`] gives up.
const MAX_ALTERNATIVES: usize = 64;

/// A regex as the sequences of pieces it can match, in its order of
/// preference: parsed once per rule, for the shapes after each keyword.
pub struct Alternatives(Vec<Vec<Piece>>);

impl Alternatives {
    /// `None` when the regex has a construct shapes do not have.
    pub fn of(pattern: &str) -> Option<Alternatives> {
        expand(&regex_syntax::parse(pattern).ok()?).map(Alternatives)
    }
}

impl Shape {
    /// The shape of `pattern` at a match that starts with `keyword` (see
    /// [`Shape::after`]).
    #[cfg(test)]
    pub fn of(pattern: &str, keyword: &str) -> Option<Shape> {
        Shape::after(&Alternatives::of(pattern)?, keyword)
    }

    /// The shape of a regex at a match that starts with `keyword`, or
    /// `None` when a greedy walk could differ from the regex.
    pub fn after(alternatives: &Alternatives, keyword: &str) -> Option<Shape> {
        let mut found = Vec::new();
        for alt in &alternatives.0 {
            // Alternatives that cannot start with the keyword cannot match.
            if let Some(rest) = consume(alt, keyword.as_bytes())? {
                if !greedy_is_exact(&rest) {
                    return None;
                }
                found.push(rest);
            }
        }
        if found.is_empty() {
            return None;
        }
        let alts = found
            .iter()
            .map(|pieces| pieces.iter().map(|&p| step(p)).collect())
            .collect();
        Some(Shape {
            skip: keyword.len(),
            alts,
            #[cfg(test)]
            pieces: found,
        })
    }

    /// The regex's match at the start of `hay`, which starts with the
    /// keyword: that of the first alternative that matches. (Alternation
    /// distributes over concatenation in the regex's order of preference,
    /// `(a|b)c` = `ac|bc`, and each alternative's greedy walk is its
    /// preferred match, so the first that matches is the regex's match.)
    pub fn find(&self, hay: &[u8]) -> Verdict {
        for alt in self.alts.iter() {
            match self.find_alt(alt, hay) {
                Verdict::NoMatch => continue,
                v => return v,
            }
        }
        Verdict::NoMatch
    }

    fn find_alt(&self, steps: &[Step], hay: &[u8]) -> Verdict {
        let Some(rest) = hay.get(self.skip..) else {
            return Verdict::Unsure;
        };
        let mut pos = self.skip;
        let mut rest = rest;
        for step in steps {
            match step {
                Step::Run { table, min, max } => {
                    let limit = rest.len().min(*max as usize);
                    let mut n = 0;
                    while n < limit && table[usize::from(rest[n])] {
                        n += 1;
                    }
                    if n < *min as usize {
                        return Verdict::NoMatch;
                    }
                    pos += n;
                    rest = &rest[n..];
                }
                Step::WordEnd => {
                    let Some(&prev) = pos.checked_sub(1).and_then(|i| hay.get(i)) else {
                        return Verdict::Unsure;
                    };
                    let next = rest.first().copied();
                    if prev >= 128 || next.is_some_and(|c| c >= 128) {
                        return Verdict::Unsure;
                    }
                    let after = next.is_some_and(|c| has(WORD, c));
                    if has(WORD, prev) == after {
                        return Verdict::NoMatch;
                    }
                }
            }
        }
        Verdict::Match(pos)
    }
}

/// The piece as [`Shape::find`] walks it.
fn step(p: Piece) -> Step {
    match p {
        Piece::Run { set, min, max } => Step::Run {
            table: Box::new(std::array::from_fn(|b| b < 128 && has(set, b as u8))),
            min,
            max,
        },
        Piece::WordEnd => Step::WordEnd,
    }
}

/// Every sequence of pieces `hir` can match, in its order of preference;
/// `None` for anything but ASCII literals and classes, greedy repetitions of
/// one byte (or `?` of anything), captures, concatenations, alternations
/// and `\b`.
fn expand(hir: &Hir) -> Option<Vec<Vec<Piece>>> {
    let one = |p: Piece| Some(vec![vec![p]]);
    match hir.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(lit) => {
            let mut seq = Vec::with_capacity(lit.0.len());
            for &b in lit.0.iter() {
                seq.push(Piece::Run {
                    set: byte_set(b)?,
                    min: 1,
                    max: 1,
                });
            }
            Some(vec![seq])
        }
        HirKind::Class(c) => one(Piece::Run {
            set: class_set(c)?,
            min: 1,
            max: 1,
        }),
        HirKind::Look(Look::WordUnicode) => one(Piece::WordEnd),
        HirKind::Look(_) => None,
        HirKind::Repetition(r) => {
            if !r.greedy {
                return None;
            }
            if let Some(set) = single_byte(&r.sub) {
                return one(Piece::Run {
                    set,
                    min: r.min,
                    max: r.max.unwrap_or(u32::MAX),
                });
            }
            if r.min == 0 && r.max == Some(1) {
                // `x?`: with `x` first, then without.
                let mut alts = expand(&r.sub)?;
                alts.push(Vec::new());
                return Some(alts);
            }
            None
        }
        HirKind::Capture(c) => expand(&c.sub),
        HirKind::Concat(subs) => {
            let mut alts = vec![Vec::new()];
            for sub in subs {
                let tails = expand(sub)?;
                if alts.len() * tails.len() > MAX_ALTERNATIVES {
                    return None;
                }
                let mut next = Vec::with_capacity(alts.len() * tails.len());
                for head in &alts {
                    for tail in &tails {
                        let mut seq = head.clone();
                        seq.extend_from_slice(tail);
                        next.push(seq);
                    }
                }
                alts = next;
            }
            Some(alts)
        }
        HirKind::Alternation(subs) => {
            let mut alts = Vec::new();
            for sub in subs {
                alts.extend(expand(sub)?);
                if alts.len() > MAX_ALTERNATIVES {
                    return None;
                }
            }
            Some(alts)
        }
    }
}

fn byte_set(b: u8) -> Option<Set> {
    (b < 128).then(|| 1 << b)
}

/// The set of a class of ASCII characters only.
fn class_set(c: &Class) -> Option<Set> {
    let ranges: Vec<(u32, u32)> = match c {
        Class::Unicode(u) => u
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        Class::Bytes(b) => b
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
    };
    let mut set = 0u128;
    for (lo, hi) in ranges {
        if hi >= 128 {
            return None;
        }
        for b in lo..=hi {
            set |= 1 << b;
        }
    }
    Some(set)
}

/// The set of a one-byte expression (a literal byte or a class).
fn single_byte(h: &Hir) -> Option<Set> {
    match h.kind() {
        HirKind::Literal(lit) if lit.0.len() == 1 => byte_set(lit.0[0]),
        HirKind::Class(c) => class_set(c),
        _ => None,
    }
}

/// The pieces after `keyword` in `seq`: `Some(None)` when the keyword
/// cannot start this sequence's match, `None` when the keyword ends inside
/// a piece of varying length (or at `\b`), which shapes do not follow.
fn consume(seq: &[Piece], keyword: &[u8]) -> Option<Option<Vec<Piece>>> {
    let mut k = 0;
    let mut i = 0;
    let mut split = None;
    while k < keyword.len() {
        let Some(&p) = seq.get(i) else {
            // The match ends inside the keyword: not a token rule.
            return None;
        };
        match p {
            Piece::Run { set, min, max } if min == max => {
                let take = (min as usize).min(keyword.len() - k);
                if !keyword[k..k + take].iter().all(|&b| has(set, b)) {
                    return Some(None);
                }
                k += take;
                i += 1;
                if take < min as usize {
                    let left = min - take as u32;
                    split = Some(Piece::Run {
                        set,
                        min: left,
                        max: left,
                    });
                }
            }
            _ => return None,
        }
    }
    let mut rest: Vec<Piece> = split.into_iter().collect();
    rest.extend_from_slice(&seq[i..]);
    Some(Some(rest))
}

/// Does a greedy walk over `pieces` without backtracking give the regex's
/// match? It does when every run of varying length is the last piece, or
/// followed only by runs that may be empty (the rest then matches wherever
/// the run stops), or followed by a piece that needs a byte the run cannot
/// take (the run's end is then forced), or followed by a final `\b` with
/// only word characters in the run (a shorter run ends between two word
/// characters, where `\b` fails). `\b` anywhere but at the end is not
/// followed.
fn greedy_is_exact(pieces: &[Piece]) -> bool {
    for (i, p) in pieces.iter().enumerate() {
        let rest = &pieces[i + 1..];
        match *p {
            Piece::WordEnd if !rest.is_empty() => return false,
            Piece::WordEnd => {}
            Piece::Run { min, max, .. } if min == max => {}
            Piece::Run { set, .. } => {
                let ok = rest.iter().all(|q| matches!(q, Piece::Run { min: 0, .. }))
                    || match rest.first() {
                        Some(Piece::Run { set: next, min, .. }) => *min >= 1 && next & set == 0,
                        Some(Piece::WordEnd) => set & !WORD == 0,
                        None => true,
                    };
                if !ok {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::rules::RULES;

    /// xorshift64: reproducible, no dependency.
    fn next(seed: &mut u64) -> usize {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed as usize
    }

    #[test]
    fn shapes_of_simple_patterns() {
        let s = Shape::of(r"ghp_[A-Za-z0-9]{36}\b", "ghp_").unwrap();
        let tok = format!("ghp_{}", "a1".repeat(18));
        assert_eq!(s.find(tok.as_bytes()), Verdict::Match(40));
        assert_eq!(s.find(format!("{tok} x").as_bytes()), Verdict::Match(40));
        assert_eq!(s.find(format!("{tok}_").as_bytes()), Verdict::NoMatch);
        assert_eq!(s.find(format!("{tok}b").as_bytes()), Verdict::NoMatch);
        assert_eq!(s.find(format!("{tok}\u{e9}").as_bytes()), Verdict::Unsure);
        assert_eq!(s.find(b"ghp_abc"), Verdict::NoMatch);
        // Two alternatives start with `xoxe`, in the regex's order; one
        // with `xoxb-`.
        let slack = r"xox(?:[abeoprs]|e\.xox[bp])-[0-9A-Za-z\-]{10,}";
        let xoxe = Shape::of(slack, "xoxe").unwrap();
        assert_eq!(xoxe.alts.len(), 2);
        assert_eq!(xoxe.find(b"xoxe-0123456789"), Verdict::Match(15));
        assert_eq!(xoxe.find(b"xoxe.xoxp-0123456789 "), Verdict::Match(20));
        assert_eq!(xoxe.find(b"xoxe.xoxq-0123456789"), Verdict::NoMatch);
        assert_eq!(Shape::of(slack, "xoxb-").unwrap().alts.len(), 1);
        // `A3T` leaves one byte of its class to check.
        let aws = r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b";
        let a3t = Shape::of(aws, "A3T").unwrap();
        assert_eq!(a3t.find(b"A3TXABCDEFGHIJKLMNOP2"), Verdict::NoMatch);
        assert_eq!(a3t.find(b"A3TXABCDEFGHIJKLMNOP "), Verdict::Match(20));
        // A run that could stop early for what follows: not followed.
        assert!(Shape::of(r"ab[a-z]{2,5}[a-f]{3}", "ab").is_none());
        assert!(Shape::of(r"ab[a-z\-]{2,5}\b", "ab").is_none());
        assert!(Shape::of(r"ab[a-z]+?", "ab").is_none());
        // The keyword ends inside a run of varying length.
        assert!(Shape::of(r"a[a-z]+", "ab").is_none());
    }

    /// Characters the generated tokens are made of: every class the rules
    /// use has members here, and so do the bytes that end tokens.
    const PIECES: &[&str] = &[
        "a",
        "f",
        "z",
        "A",
        "F",
        "Q",
        "Z",
        "0",
        "2",
        "7",
        "9",
        "_",
        "-",
        ".",
        "=",
        "/",
        "+",
        "~",
        "!",
        "$",
        ":",
        "@",
        "%",
        " ",
        "\t",
        "\"",
        "'",
        "\u{e9}",
        "\u{a0}",
        "\u{1f600}",
        "eyJ",
        "T3BlbkFJ",
        "-1",
        ".atlasv1.",
        "acc_",
        "_mmk",
    ];
    /// Runs of one alphabet, so that long tokens occur.
    const RUNS: &[&str] = &[
        "abcdef0123456789",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "aB3_-",
        "0123456789",
        "abcdefghijklmnopqrstuvwxyz",
    ];

    /// Up to 140 bytes of runs of one alphabet with other pieces between.
    fn random_text(hay: &mut String, seed: &mut u64) {
        let target = hay.len() + next(seed) % 140;
        let run = RUNS[next(seed) % RUNS.len()].as_bytes();
        while hay.len() < target {
            if next(seed).is_multiple_of(8) {
                hay.push_str(PIECES[next(seed) % PIECES.len()]);
            } else {
                hay.push(char::from(run[next(seed) % run.len()]));
            }
        }
    }

    /// Text that follows the shape's pieces, with run lengths at and around
    /// their bounds and now and then a byte from elsewhere.
    fn along(shape: &Shape, hay: &mut String, seed: &mut u64) {
        let alt = &shape.pieces[next(seed) % shape.pieces.len()];
        for p in alt {
            let Piece::Run { set, min, max } = *p else {
                continue;
            };
            let members: Vec<u8> = (0..128u8).filter(|&b| has(set, b)).collect();
            let (min, max) = (min as usize, (max as usize).min(min as usize + 150));
            let n = match next(seed) % 6 {
                0 => min.saturating_sub(1),
                1 => min,
                2 => min + 1,
                3 => max,
                4 => max + 1,
                _ => min + next(seed) % (max - min + 2),
            };
            for _ in 0..n {
                if next(seed).is_multiple_of(200) {
                    hay.push_str(PIECES[next(seed) % PIECES.len()]);
                } else {
                    hay.push(char::from(members[next(seed) % members.len()]));
                }
            }
        }
    }

    /// Every shape gives the span its rule's regex gives (or defers to it),
    /// on the keyword followed by generated text: runs of every alphabet the
    /// rules use, of lengths around their bounds, then any kind of byte.
    #[test]
    fn shapes_match_as_their_regexes() {
        let mut seed = 0x51ed_270b_2f85_c8e3_u64;
        let (mut shapes, mut matched, mut missed, mut unsure) = (0, 0, 0, 0);
        for rule in RULES {
            let re = regex::Regex::new(&format!("^(?:{})", rule.pattern)).unwrap();
            for kw in rule.keywords {
                let Some(shape) = Shape::of(rule.pattern, kw) else {
                    continue;
                };
                shapes += 1;
                for round in 0..3000u32 {
                    let mut hay = kw.to_string();
                    if round.is_multiple_of(3) {
                        random_text(&mut hay, &mut seed);
                    } else {
                        along(&shape, &mut hay, &mut seed);
                    }
                    if round.is_multiple_of(2) {
                        hay.push_str(PIECES[next(&mut seed) % PIECES.len()]);
                    }
                    let want = re.find(&hay).map(|m| m.end());
                    match shape.find(hay.as_bytes()) {
                        Verdict::Match(e) => {
                            assert_eq!(Some(e), want, "{}: {kw} {hay:?}", rule.name);
                            matched += 1;
                        }
                        Verdict::NoMatch => {
                            assert_eq!(None, want, "{}: {kw} {hay:?}", rule.name);
                            missed += 1;
                        }
                        Verdict::Unsure => unsure += 1,
                    }
                }
            }
        }
        assert!(shapes > 200, "{shapes} shapes");
        assert!(
            matched > 100_000 && missed > 100_000 && unsure > 1000,
            "{matched} {missed} {unsure}"
        );
    }
}
