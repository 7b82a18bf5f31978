//! The engine: runs PEM, provider, key-aware and user rules over a message
//! and replaces what they find.
//!
//! Cost model: most lines contain no secret, so a line first goes through one
//! Aho-Corasick automaton (provider keywords and provider words, sensitive
//! key stems in their usual cases, the PEM header and `://`). A line with no
//! hit and no open PEM block is returned untouched without allocating. An
//! anchored provider rule runs at the position of its keyword while the
//! automaton reports it (bounded by the token's length); a provider word is
//! followed to its value on the spot; only the few rules whose keyword sits
//! inside the token are searched over the line afterwards.
//!
//! Every detector reports byte spans; overlapping spans are merged (the
//! union is replaced, so no detector can leave a tail of another's secret
//! visible) and each merged span becomes `[REDACTED:<rule>]`, where the rule
//! is that of the span that starts first (on a tie: PEM, then provider, then
//! key rules, then personal data). Allowlisted values are dropped before
//! merging; PEM spans are never allowlisted; a span inside a marker already
//! there is dropped, so redacting twice changes nothing. Output is a pure
//! function of input, stream state and config (with `mode = "hash"` the
//! marker carries a tag, the first hex digits of HMAC-SHA256(key, secret),
//! so one secret gives one tag wherever and whenever it appears).
//!
//! Metric counters are resolved per rule when the engine is built, so the hot
//! path only does an atomic add.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use hmac::{Hmac, Mac};
use prometheus_client::metrics::counter::Counter;
use regex::{Regex, RegexSet};
use regex_automata::meta::Regex as MetaRegex;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored as ReAnchored, Input};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::config::{
    one_line, valid_rule_name, EmailStyle, PiiKind, RedactMode, RedactionConfig,
    DEFAULT_HASH_LENGTH, MIN_HASH_KEY,
};
use super::context::{self, CTX_RULES};
use super::keys::{skip_value, Context, Family, KeyError, KeyMatcher};
use super::pem::{self, StreamState};
use super::pii::{self, PiiSet};
use super::rules::{Guard, RULES};
use super::shape::{Alternatives, Shape, Verdict};

/// Index of a rule name (its label and marker).
pub type RuleId = u16;

/// Tie-break order between detectors whose spans start at the same byte.
pub const PRIO_PEM: u8 = 0;
pub const PRIO_RULE: u8 = 1;
pub const PRIO_KEY: u8 = 2;
pub const PRIO_PII: u8 = 3;

/// A byte range of a message to replace.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub rule: RuleId,
    pub prio: u8,
}

impl Span {
    pub fn new(start: usize, end: usize, rule: RuleId, prio: u8) -> Span {
        Span {
            start,
            end,
            rule,
            prio,
        }
    }
}

/// Room a message's span list gets at its first span: a secret-dense line
/// collects several (a secret is often found by a key and a provider rule
/// both), and growing the list from nothing to that size one doubling at a
/// time was two reallocations a line (callgrind, `dense_providers`).
const SPANS_AT_FIRST: usize = 16;

/// Add `span` to a message's spans (the list is only allocated once a span
/// is found: most lines have none).
pub fn push_span(spans: &mut Vec<Span>, span: Span) {
    if spans.capacity() == 0 {
        spans.reserve_exact(SPANS_AT_FIRST);
    }
    spans.push(span);
}

/// Rule names, interned while the engine is built.
#[derive(Default)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    pub fn id(&mut self, name: &str) -> RuleId {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i as RuleId,
            None => {
                self.names.push(name.to_string());
                (self.names.len() - 1) as RuleId
            }
        }
    }
}

/// A compiled regex detector (built-in or from the config).
struct Detector {
    re: Regex,
    group: usize,
    check: Option<fn(&str) -> bool>,
    id: RuleId,
    /// Compiled as `^(?:...)`: run on the text from a keyword on.
    anchored: bool,
    /// An anchored match must start a token.
    boundary: bool,
    /// The secret starts after the match's first blank run.
    after_blank: bool,
    /// A `pre1` token (`super::rules`): `re` is the token alone, this the
    /// guard's class and the rule's full regex (`^(?:(token)(?:[^class]|$))`,
    /// the secret in group 1), run only when the byte after `re`'s match
    /// fails the guard.
    guard: Option<(Guard, Regex)>,
    /// An unanchored rule written `<lead>(secret)rest` with a token lead
    /// ([`Lead`]): the lead's alternatives, and `(secret)rest` alone, whose
    /// group 1 is found by an anchored search right after the lead instead
    /// of a capture search over the whole match (see
    /// [`Inner::run_detector`]).
    lead: Option<(Lead, MetaRegex)>,
}

/// The context a token rule requires before its secret, written as the
/// regex's first part (`(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])`: start of
/// text, a non-word character, a percent escape or a backslash escape; some
/// also take `/bot`). Each alternative has a length known by hand, so the
/// secret's start follows from the match's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lead {
    Token,
    TokenOrBot,
}

impl Lead {
    const TOKEN: &'static str = r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr])";
    const TOKEN_OR_BOT: &'static str = r"(?:^|[^0-9A-Za-z_]|%[0-9A-Fa-f]{2}|\\[ntr]|/bot)";

    /// The lead of `pattern` and the rest after it, when the rest starts
    /// with the secret's group.
    fn split(pattern: &str) -> Option<(Lead, &str)> {
        let (lead, rest) = if let Some(rest) = pattern.strip_prefix(Self::TOKEN) {
            (Lead::Token, rest)
        } else {
            (Lead::TokenOrBot, pattern.strip_prefix(Self::TOKEN_OR_BOT)?)
        };
        (rest.starts_with('(') && !rest.starts_with("(?")).then_some((lead, rest))
    }

    /// Where the secret may start for a match of the whole rule at `at`, in
    /// the order the regex tries the lead's alternatives (leftmost-first).
    fn starts(self, text: &str, at: usize) -> impl Iterator<Item = usize> + '_ {
        let b = &text.as_bytes()[at..];
        let empty = (at == 0).then_some(at);
        let other = text[at..]
            .chars()
            .next()
            .filter(|&c| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(|c| at + c.len_utf8());
        let pct =
            (b.len() >= 3 && b[0] == b'%' && b[1].is_ascii_hexdigit() && b[2].is_ascii_hexdigit())
                .then_some(at + 3);
        let esc =
            (b.len() >= 2 && b[0] == b'\\' && matches!(b[1], b'n' | b't' | b'r')).then_some(at + 2);
        let bot = (self == Lead::TokenOrBot && b.starts_with(b"/bot")).then_some(at + 4);
        [empty, other, pct, esc, bot].into_iter().flatten()
    }
}

/// What an Aho-Corasick keyword stands for.
#[derive(Clone, Copy)]
enum Owner {
    /// A rule searched over the whole line after the automaton pass.
    Rule(usize),
    /// A rule run at the keyword's position, and the index in
    /// `Inner::shapes` of its regex's shape after this keyword, if it has
    /// one.
    Anchored(usize, Option<u32>),
    /// A provider word: its key's value is checked against the shapes.
    Ctx(usize),
    Pem,
    /// A sensitive key stem (key-aware scan).
    Key,
    /// `://`: a URL that may carry userinfo.
    Url,
}

/// Bits for up to 256 unanchored rules.
#[derive(Default, Clone, Copy)]
struct Bits([u64; 4]);

impl Bits {
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }
    fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(k, mut w)| {
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let i = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(k * 64 + i)
            })
        })
    }
}

/// Keyword hits of one message that are acted on after the automaton pass.
#[derive(Default)]
struct Hits {
    /// Unanchored built-in rules whose keyword occurred.
    rules: Bits,
    pem: bool,
}

/// `mode = "hash"`: the keyed MAC and the tag length.
struct Tagger {
    mac: Hmac<Sha256>,
    hex_len: usize,
}

impl Tagger {
    /// The first `hex_len` hex digits of HMAC-SHA256(key, secret).
    fn tag(&self, secret: &str, out: &mut String) {
        let mut m = self.mac.clone();
        m.update(secret.as_bytes());
        let digest = m.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (k, byte) in digest.iter().enumerate() {
            if 2 * k >= self.hex_len {
                break;
            }
            out.push(HEX[usize::from(byte >> 4)] as char);
            if 2 * k + 1 < self.hex_len {
                out.push(HEX[usize::from(byte & 15)] as char);
            }
        }
    }
}

/// Everything built from one config; shared behind an `Arc`.
struct Inner {
    detectors: Vec<Detector>,
    /// Index of the first user pattern in `detectors` (they have no keywords
    /// and run on every message).
    custom_from: usize,
    keywords: Keywords,
    owners: Vec<Owner>,
    /// Shapes of anchored rules' tokens after their keywords ([`Shape`]).
    shapes: Vec<Shape>,
    keys: KeyMatcher,
    /// Provider-context shapes (`^(?:...)$`), by index of [`CTX_RULES`].
    ctx: Vec<(Regex, RuleId)>,
    allow: HashSet<String>,
    allow_re: Option<RegexSet>,
    names: Vec<String>,
    markers: Vec<String>,
    counters: Vec<Counter>,
    pem_rule: RuleId,
    unterminated: Counter,
    pii: PiiSet,
    /// Rule ids of the PII kinds, in [`PiiKind`] order.
    pii_rules: [RuleId; 5],
    email_partial: bool,
    tagger: Option<Tagger>,
}

/// Compiled redaction rules; cheap to clone, `Send + Sync`, built once per
/// config.
#[derive(Clone)]
pub struct Redactor {
    enabled: bool,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("enabled", &self.enabled)
            .field("rules", &self.inner.markers.len())
            .finish()
    }
}

/// `pass` -> `pass`, `Pass`, `PASS`: keywords are case-sensitive (provider
/// prefixes are), and keys are written in these three cases in practice
/// (`db_password`, `dbPassword`, `DB_PASSWORD`).
fn case_variants(s: &str) -> Vec<String> {
    let lower = s.to_ascii_lowercase();
    let mut cap = lower.clone();
    if let Some(first) = cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let mut v = vec![lower.clone(), cap, s.to_ascii_uppercase()];
    v.dedup();
    v
}

/// Literals that every sensitive key contains.
const KEY_STEMS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "cookie",
    "session",
    "sessid",
    "credential",
    "connection",
    "sig",
];

/// One problem in `[redaction]`, naming the value it is about (by its index
/// in the config's list) so `Config::validate` can point at it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedactError {
    #[error("redaction pattern name \"{name}\" must be 1-64 characters of a-z, 0-9 and _ (it becomes a metric label)")]
    PatternName { index: usize, name: String },
    #[error("duplicate redaction pattern name \"{name}\"")]
    DuplicateName { index: usize, name: String },
    #[error("invalid regex in redaction pattern \"{name}\": {detail}")]
    PatternRegex {
        index: usize,
        name: String,
        detail: String,
    },
    #[error("invalid regex in redaction.allow_regex: {detail}")]
    AllowRegex { index: usize, detail: String },
    #[error("redaction.mode = \"hash\" needs a key: set hash_key_env = \"LOGSHIP_REDACT_KEY\" (the variable's name) or hash_key = \"${{LOGSHIP_REDACT_KEY}}\"; generate one with `openssl rand -hex 32`")]
    HashKeyMissing,
    #[error("redaction.hash_key_env: environment variable {var} is not set (or not UTF-8); export it before starting the agent")]
    HashKeyEnv { var: String },
    #[error("redaction hash key is {len} bytes; use at least {MIN_HASH_KEY} random bytes (`openssl rand -hex 32`)")]
    HashKeyShort { len: usize },
    #[error("redaction.hash_length = {len}: use 4 to 32 hex characters")]
    HashLength { len: usize },
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A built-in rule does not build: a bug, not a config mistake.
    #[error("internal: {0}")]
    Internal(String),
}

/// Every problem of one `[redaction]`, in config order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct RedactErrors(pub Vec<RedactError>);

impl Redactor {
    /// Build the engine. The one check of `[redaction]`: `Config::validate`
    /// calls it (through [`Redactor::check`]) and reports its errors at
    /// their positions.
    pub fn new(cfg: &RedactionConfig) -> Result<Redactor, RedactErrors> {
        if !cfg.enabled {
            tracing::warn!(
                "REDACTION IS DISABLED ([redaction] enabled = false): secrets and private keys in logs will be written to disk and shipped unredacted"
            );
        }
        Redactor::shared(cfg)
    }

    /// Whether both are one build (tests of [`Redactor::shared`]).
    #[cfg(test)]
    pub(super) fn is_same_build(&self, other: &Redactor) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// What [`Redactor::new`] would reject, without its start-up warning.
    pub fn check(cfg: &RedactionConfig) -> Result<(), RedactErrors> {
        Redactor::shared(cfg).map(drop)
    }

    /// The last engine built, when `cfg` (and the hash key it names) is what
    /// it was built from; else a new build, remembered in its place. Config
    /// validation, the pipeline and every reload that leaves `[redaction]`
    /// as it was share one build: each is several MiB of automata and
    /// ~0.05 s of CPU, and the allocator keeps much of a discarded one.
    fn shared(cfg: &RedactionConfig) -> Result<Redactor, RedactErrors> {
        static LAST: Mutex<Option<(BuildKey, Redactor)>> = Mutex::new(None);
        let key = BuildKey::of(cfg);
        // A panic while holding the lock left a whole value behind.
        let last = || LAST.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, r)) = last().as_ref() {
            if *k == key {
                return Ok(r.clone());
            }
        }
        // Built outside the lock: tests build many engines in parallel.
        let built = Redactor::build(cfg)?;
        *last() = Some((key, built.clone()));
        Ok(built)
    }

    fn build(cfg: &RedactionConfig) -> Result<Redactor, RedactErrors> {
        let internal = |e: String| RedactErrors(vec![RedactError::Internal(e)]);
        let mut errors = Vec::new();
        let mut labels = Labels::default();
        let mut detectors = Vec::new();
        let mut kw: Vec<String> = Vec::new();
        let mut owners = Vec::new();
        let mut shapes = Vec::new();
        if RULES.iter().filter(|r| !r.anchored).count() > 256 {
            return Err(internal("more than 256 unanchored redaction rules".into()));
        }
        let mut unanchored = 0;
        for (i, r) in RULES.iter().enumerate() {
            let re = if r.anchored {
                Regex::new(&format!("^(?:{})", r.pattern))
            } else {
                Regex::new(r.pattern)
            }
            .map_err(|e| internal(format!("built-in rule {}: {e}", r.name)))?;
            let guard = match r.guard {
                Some(g) => {
                    let full = format!("^(?:({})(?:[^{}]|$))", r.pattern, g.class());
                    let full = Regex::new(&full)
                        .map_err(|e| internal(format!("built-in rule {}: {e}", r.name)))?;
                    Some((g, full))
                }
                None => None,
            };
            let lead = match Lead::split(r.pattern) {
                Some((lead, rest)) if !r.anchored && r.group == 1 => {
                    let rest = MetaRegex::new(rest)
                        .map_err(|e| internal(format!("built-in rule {}: {e}", r.name)))?;
                    Some((lead, rest))
                }
                _ => None,
            };
            detectors.push(Detector {
                re,
                group: r.group,
                check: r.check,
                id: labels.id(r.name),
                anchored: r.anchored,
                boundary: r.boundary,
                after_blank: r.after_blank,
                guard,
                lead,
            });
            if !r.anchored {
                unanchored += 1;
            }
            // A shape stands for `re`'s match: the whole match, or a
            // `pre1` token (the secret of other capture rules is a group).
            let shaped = r.anchored && (r.group == 0 || r.guard.is_some());
            let alternatives = if shaped {
                Alternatives::of(r.pattern)
            } else {
                None
            };
            for k in r.keywords {
                kw.push(k.to_string());
                owners.push(if r.anchored {
                    let shape = alternatives.as_ref().and_then(|a| Shape::after(a, k));
                    let shape = shape.map(|s| {
                        shapes.push(s);
                        (shapes.len() - 1) as u32
                    });
                    Owner::Anchored(i, shape)
                } else {
                    Owner::Rule(i)
                });
            }
        }
        let _ = unanchored;
        let mut ctx = Vec::with_capacity(CTX_RULES.len());
        for (i, c) in CTX_RULES.iter().enumerate() {
            let re = Regex::new(&format!("^(?:{})$", c.shapes))
                .map_err(|e| internal(format!("built-in rule {}: {e}", c.name)))?;
            ctx.push((re, labels.id(c.name)));
            for w in c.words {
                for v in case_variants(w) {
                    kw.push(v);
                    owners.push(Owner::Ctx(i));
                }
            }
        }
        kw.push("-----BEGIN ".into());
        owners.push(Owner::Pem);

        let custom_from = detectors.len();
        let mut seen = HashSet::new();
        for (index, p) in cfg.patterns.iter().enumerate() {
            let name = p.name.get_ref();
            if !valid_rule_name(name) {
                errors.push(RedactError::PatternName {
                    index,
                    name: name.clone(),
                });
            } else if !seen.insert(name) {
                errors.push(RedactError::DuplicateName {
                    index,
                    name: name.clone(),
                });
            }
            let re = match Regex::new(p.regex.get_ref()) {
                Ok(re) => re,
                Err(e) => {
                    errors.push(RedactError::PatternRegex {
                        index,
                        name: name.clone(),
                        detail: one_line(&e),
                    });
                    continue;
                }
            };
            let group = match re.capture_names().position(|n| n == Some("secret")) {
                Some(g) => g,
                None if re.captures_len() > 1 => 1,
                None => 0,
            };
            detectors.push(Detector {
                re,
                group,
                check: None,
                id: labels.id(name),
                anchored: false,
                boundary: false,
                after_blank: false,
                guard: None,
                lead: None,
            });
        }

        let allow_re = if cfg.allow_regex.is_empty() {
            None
        } else {
            match RegexSet::new(cfg.allow_regex.iter().map(|r| r.get_ref())) {
                Ok(set) => Some(set),
                Err(_) => {
                    // Which one: only on this error path is each compiled alone.
                    for (index, r) in cfg.allow_regex.iter().enumerate() {
                        if let Err(e) = Regex::new(r.get_ref()) {
                            errors.push(RedactError::AllowRegex {
                                index,
                                detail: one_line(&e),
                            });
                        }
                    }
                    None
                }
            }
        };
        let tagger = match cfg.mode() {
            RedactMode::Mask => None,
            RedactMode::Hash => hash_key(cfg, &mut errors).map(|(key, hex_len)| Tagger {
                // HMAC takes a key of any length; this cannot fail.
                mac: <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
                    .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
                hex_len,
            }),
        };
        let extra: Vec<String> = cfg.keys.iter().map(|k| k.get_ref().clone()).collect();
        let keys = KeyMatcher::new(&extra, &mut labels).map_err(|e| {
            errors.push(e.into());
            RedactErrors(std::mem::take(&mut errors))
        })?;
        if !errors.is_empty() {
            return Err(RedactErrors(errors));
        }
        let mut stems: Vec<String> = KEY_STEMS.iter().map(|s| s.to_string()).collect();
        stems.extend(extra.iter().map(|k| super::keys::normalize(k)));
        stems.extend(extra.iter().map(|k| k.to_lowercase()));
        for stem in stems {
            for variant in case_variants(&stem) {
                kw.push(variant);
                owners.push(Owner::Key);
            }
        }
        kw.push("://".into());
        owners.push(Owner::Url);
        // One DFA over every keyword: a benign line costs one pass of a
        // table-driven automaton and nothing else. No prefilter: with
        // hundreds of keywords none applies, and without one the start
        // state is not special, so the loop in `each_keyword` only leaves
        // its fast path at a match.
        let keywords = Keywords::build(&kw).map_err(|e| internal(e.to_string()))?;
        let pem_rule = labels.id("pem_private_key");
        let pii = PiiSet::new(cfg.pii.iter().map(|k| *k.get_ref()));
        let pii_rules = [
            labels.id("email"),
            labels.id("card"),
            labels.id("ipv4"),
            labels.id("ipv6"),
            labels.id("phone"),
        ];
        let metrics = crate::ops::metrics::metrics();
        let unterminated = metrics.redaction("pem_unterminated");
        let markers = labels
            .names
            .iter()
            .map(|n| format!("[REDACTED:{n}]"))
            .collect();
        let counters = labels.names.iter().map(|n| metrics.redaction(n)).collect();
        Ok(Redactor {
            enabled: cfg.enabled,
            inner: Arc::new(Inner {
                detectors,
                custom_from,
                keywords,
                owners,
                shapes,
                keys,
                ctx,
                allow: cfg.allow.iter().map(|a| a.get_ref().clone()).collect(),
                allow_re,
                names: labels.names,
                markers,
                counters,
                pem_rule,
                unterminated,
                pii,
                pii_rules,
                email_partial: cfg.email == EmailStyle::Partial,
                tagger,
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redact one message in place (one line of a stream; it may contain
    /// '\n' when a JSON line's message had escaped newlines); returns the
    /// number of replacements.
    pub fn redact_msg(&self, state: &mut StreamState, msg: &mut String) -> usize {
        if !self.enabled {
            return 0;
        }
        self.inner.redact_text(state, msg)
    }

    /// Deep-redact a JSON event's structured payload in place.
    pub fn redact_data(&self, data: &mut Map<String, Value>) -> usize {
        if !self.enabled {
            return 0;
        }
        data.iter_mut()
            .map(|(k, v)| self.inner.redact_value(Some(k), v))
            .sum()
    }
}

impl Inner {
    fn redact_text(&self, state: &mut StreamState, msg: &mut String) -> usize {
        let text = msg.as_str();
        let bytes = text.as_bytes();
        let mut hits = Hits::default();
        let mut spans = Vec::new();
        let mut done_until = 0;
        each_keyword(&self.keywords, bytes, |pattern, start, end| {
            match self.owners[pattern] {
                Owner::Rule(i) => hits.rules.set(i),
                Owner::Anchored(i, shape) => {
                    if !self.detectors[i].boundary || token_start(bytes, start) {
                        let shape = shape.and_then(|k| self.shapes.get(k as usize));
                        self.run_anchored(&self.detectors[i], shape, text, start, &mut spans);
                    }
                }
                Owner::Ctx(i) => self.run_ctx(i, text, start, end, &mut spans),
                Owner::Pem => hits.pem = true,
                Owner::Key => self
                    .keys
                    .stem(text, (start, end), &mut done_until, &mut spans),
                Owner::Url => self.keys.url_password(text, start, &mut spans),
            }
        });
        let custom = self.detectors.len() > self.custom_from;
        if spans.is_empty()
            && !hits.rules.any()
            && !hits.pem
            && !custom
            && !self.pii.any()
            && !state.in_private_key()
        {
            return 0;
        }
        let mut unterminated = 0;
        if hits.pem || state.in_private_key() {
            let mut found = pem::Found::default();
            pem::scan(state, text, &mut found);
            unterminated = found.unterminated;
            spans.extend(
                found
                    .spans
                    .iter()
                    .filter(|(s, e)| s < e)
                    .map(|&(s, e)| Span::new(s, e, self.pem_rule, PRIO_PEM)),
            );
        }
        for i in hits.rules.iter() {
            self.run_detector(&self.detectors[i], text, &mut spans);
        }
        for d in &self.detectors[self.custom_from..] {
            self.run_detector(d, text, &mut spans);
        }
        if self.pii.any() {
            let mut found = Vec::new();
            pii::scan(self.pii, text, &mut found);
            spans.extend(found.into_iter().map(|(s, e, kind)| {
                let rule = self.pii_rules[kind as usize];
                Span::new(s, e, rule, PRIO_PII)
            }));
        }
        if unterminated > 0 {
            self.unterminated.inc_by(unterminated as u64);
        }
        self.apply(msg, spans)
    }

    fn check_ok(d: &Detector, s: &str) -> bool {
        d.check.is_none_or(|f| f(s))
    }

    /// An anchored rule at the keyword found at `at`, with the shape of
    /// its token after that keyword if it has one. Out of line: inlined,
    /// it made `redact_text` slower on benign text, which seldom gets here.
    #[inline(never)]
    fn run_anchored(
        &self,
        d: &Detector,
        shape: Option<&Shape>,
        text: &str,
        at: usize,
        spans: &mut Vec<Span>,
    ) {
        let hay = &text[at..];
        let Some((mut s, e)) = Self::anchored_match(d, shape, hay) else {
            return;
        };
        if d.after_blank {
            let b = hay.as_bytes();
            while s < e && !matches!(b[s], b' ' | b'\t') {
                s += 1;
            }
            while s < e && matches!(b[s], b' ' | b'\t') {
                s += 1;
            }
        }
        if s < e && Self::check_ok(d, &hay[s..e]) {
            push_span(spans, Span::new(at + s, at + e, d.id, PRIO_RULE));
        }
    }

    /// `d.re`'s match at the start of `hay` (a keyword of `d`'s), found by
    /// hand when `shape` can tell.
    fn token_match(d: &Detector, shape: Option<&Shape>, hay: &str) -> Option<(usize, usize)> {
        match shape.map(|s| s.find(hay.as_bytes())) {
            Some(Verdict::Match(end)) => Some((0, end)),
            Some(Verdict::NoMatch) => None,
            Some(Verdict::Unsure) | None => d.re.find(hay).map(|m| (m.start(), m.end())),
        }
    }

    /// The secret's span in `hay` of an anchored rule's match at its start
    /// (`shape`: see [`Inner::token_match`]).
    fn anchored_match(d: &Detector, shape: Option<&Shape>, hay: &str) -> Option<(usize, usize)> {
        if let Some((guard, full)) = &d.guard {
            // The highest-priority match of the token is the rule's match
            // whenever the guard holds after it; else a lower-priority one
            // may be (or none), which only the full regex can tell.
            match Self::token_match(d, shape, hay) {
                Some((s, e)) if !guard.continued_by(hay.as_bytes().get(e).copied()) => Some((s, e)),
                Some(_) => full
                    .captures(hay)
                    .and_then(|c| c.get(1))
                    .map(|m| (m.start(), m.end())),
                None => None,
            }
        } else if d.group == 0 {
            Self::token_match(d, shape, hay)
        } else {
            d.re.captures(hay)
                .and_then(|c| c.get(d.group))
                .map(|m| (m.start(), m.end()))
        }
    }

    /// A provider word at `text[s..e]`: its key's value, if it has the
    /// provider's shape.
    fn run_ctx(&self, i: usize, text: &str, s: usize, e: usize, spans: &mut Vec<Span>) {
        let Some(kv) = context::value_after(text, s, e) else {
            return;
        };
        let (re, rule) = &self.ctx[i];
        let (vs, mut ve) = kv.value;
        // A sentence may end right after the value (`key: abc.`).
        for _ in 0..2 {
            let v = &text[vs..ve];
            if re.is_match(v) {
                if !context::id_under_id_key(&text[kv.key.0..kv.key.1], v) {
                    push_span(spans, Span::new(vs, ve, *rule, PRIO_RULE));
                }
                return;
            }
            match v.as_bytes().last() {
                Some(b'.' | b':' | b'!' | b'?') => ve -= 1,
                _ => return,
            }
        }
    }

    fn run_detector(&self, d: &Detector, text: &str, spans: &mut Vec<Span>) {
        if d.anchored {
            return;
        }
        let prio = PRIO_RULE;
        if let Some((lead, rest)) = &d.lead {
            for m in d.re.find_iter(text) {
                // Should the two ever disagree, the capture search decides.
                let group = Self::after_lead(*lead, rest, text, m.start(), m.end()).or_else(|| {
                    d.re.captures_at(text, m.start())
                        .and_then(|c| c.get(d.group))
                        .map(|g| (g.start(), g.end()))
                });
                let Some((s, e)) = group else {
                    continue;
                };
                if Self::check_ok(d, &text[s..e]) {
                    push_span(spans, Span::new(s, e, d.id, prio));
                }
            }
        } else if d.group == 0 {
            for m in d.re.find_iter(text) {
                if Self::check_ok(d, m.as_str()) {
                    push_span(spans, Span::new(m.start(), m.end(), d.id, prio));
                }
            }
        } else {
            for c in d.re.captures_iter(text) {
                if let Some(m) = c.get(d.group) {
                    if Self::check_ok(d, m.as_str()) {
                        push_span(spans, Span::new(m.start(), m.end(), d.id, prio));
                    }
                }
            }
        }
    }

    /// Group 1 of a lead rule's match `text[at..end]`: the rule's regex
    /// takes the first of the lead's alternatives after which `rest` matches
    /// (leftmost-first), and `rest`'s own match there, found by an anchored
    /// search (a one-pass DFA when `rest` is one-pass), gives the group. A
    /// capture search over the whole rule would run the bounded backtracker
    /// over the match, several times the cost.
    fn after_lead(
        lead: Lead,
        rest: &MetaRegex,
        text: &str,
        at: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        for from in lead.starts(text, at) {
            let input = Input::new(text)
                .span(from..text.len())
                .anchored(ReAnchored::Yes);
            let mut slots: [Option<NonMaxUsize>; 4] = [None; 4];
            if rest.search_slots(&input, &mut slots).is_none() {
                continue;
            }
            // The whole match is the lead and this one; else the regexes
            // disagree (a unit test rules that out) and the caller runs the
            // capture search.
            if slots[1].map(|x| x.get()) != Some(end) {
                return None;
            }
            return Some((slots[2]?.get(), slots[3]?.get()));
        }
        None
    }

    fn allowed(&self, value: &str) -> bool {
        // An empty set is not hashed into (SipHash of every secret found).
        (!self.allow.is_empty() && self.allow.contains(value))
            || self.allow_re.as_ref().is_some_and(|r| r.is_match(value))
    }

    /// Replace the union of `spans` in `msg`; returns the number of markers.
    fn apply(&self, msg: &mut String, mut spans: Vec<Span>) -> usize {
        spans.retain(|s| {
            s.start < s.end && (s.prio == PRIO_PEM || !self.allowed(&msg[s.start..s.end]))
        });
        if spans.is_empty() {
            return 0;
        }
        drop_inside_markers(msg, &mut spans);
        if spans.is_empty() {
            return 0;
        }
        spans.sort_unstable_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(a.prio.cmp(&b.prio))
                .then(b.end.cmp(&a.end))
        });
        // Merged in place: `spans[..kept]` are the merged spans so far.
        let mut kept: usize = 0;
        for i in 0..spans.len() {
            let s = spans[i];
            match kept.checked_sub(1).map(|k| &mut spans[k]) {
                Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                _ => {
                    spans[kept] = s;
                    kept += 1;
                }
            }
        }
        spans.truncate(kept);
        let merged = spans;
        let mut out = String::with_capacity(msg.len() + 16 * merged.len());
        let mut at = 0;
        for s in &merged {
            out.push_str(&msg[at..s.start]);
            self.marker(&msg[s.start..s.end], s.rule, &mut out);
            self.counters[s.rule as usize].inc();
            at = s.end;
        }
        out.push_str(&msg[at..]);
        *msg = out;
        merged.len()
    }

    /// What replaces `secret` found by `rule`.
    fn marker(&self, secret: &str, rule: RuleId, out: &mut String) {
        if self.email_partial && rule == self.pii_rules[PiiKind::Email as usize] {
            if let Some(at) = secret.find('@') {
                if let Some(first) = secret[..at].chars().next() {
                    out.push(first);
                    out.push_str("***");
                    out.push_str(&secret[at..]);
                    return;
                }
            }
        }
        match &self.tagger {
            None => out.push_str(&self.markers[rule as usize]),
            Some(t) => {
                out.push_str("[REDACTED:");
                out.push_str(&self.names[rule as usize]);
                out.push(':');
                t.tag(secret, out);
                out.push(']');
            }
        }
    }

    /// Redact one JSON value found under `key` (None inside arrays).
    fn redact_value(&self, key: Option<&str>, v: &mut Value) -> usize {
        let kr = key.and_then(|k| self.keys.classify(k, Context::Other));
        match v {
            Value::String(s) => match kr {
                Some(kr) if !skip_value(s, kr.family) => {
                    let (start, end, rule) = self.keys.value_in_string(s, kr);
                    let mut spans = vec![Span::new(start, end, rule, PRIO_KEY)];
                    if self.allowed(&s[start..end]) {
                        spans.clear();
                    }
                    let n = self.apply(s, spans);
                    if n == 0 {
                        return self.redact_text(&mut StreamState::default(), s);
                    }
                    n
                }
                _ => self.redact_text(&mut StreamState::default(), s),
            },
            Value::Number(n) if kr.is_some_and(|k| k.family == Family::Password) => {
                if let Some(kr) = kr {
                    let mut s = String::new();
                    self.marker(&n.to_string(), kr.rule, &mut s);
                    *v = Value::String(s);
                    self.counters[kr.rule as usize].inc();
                    return 1;
                }
                0
            }
            Value::Array(items) => {
                let inherited = if kr.is_some() { key } else { None };
                items
                    .iter_mut()
                    .map(|x| self.redact_value(inherited, x))
                    .sum()
            }
            Value::Object(map) => map
                .iter_mut()
                .map(|(k, x)| self.redact_value(Some(k), x))
                .sum(),
            _ => 0,
        }
    }
}

/// The keyword automaton and the length of its longest keyword.
struct Keywords {
    dfa: DFA,
    longest: usize,
}

impl Keywords {
    /// The automaton [`each_keyword`] walks: every occurrence
    /// (`MatchKind::Standard`), no prefilter.
    fn build<P: AsRef<[u8]>>(patterns: &[P]) -> Result<Keywords, aho_corasick::BuildError> {
        Ok(Keywords {
            dfa: aho_corasick::dfa::Builder::new()
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(patterns)?,
            longest: patterns.iter().map(|p| p.as_ref().len()).max().unwrap_or(0),
        })
    }
}

/// Does [`each_keyword`] walk a message of `len` bytes in two parts? The
/// second part starts `longest` bytes before its range, so a message is
/// split only where that overlap is a small share of it. Four parts
/// measured no faster than two on the loghub lines (criterion,
/// `redact/benign_text`): most are too short for them to pay.
fn walked_in_two(len: usize, longest: usize) -> bool {
    len >= 64 && len >= 4 * longest
}

/// Call `f(pattern, start, end)` for every occurrence of every keyword in
/// `hay`, in order of its end (several ending at one byte: in the
/// automaton's order): what `AhoCorasick::find_overlapping_iter` reports
/// with `MatchKind::Standard`. That iterator keeps its position in a state
/// struct that it reloads and stores at every byte, about 20 instructions a
/// byte, which made it most of the cost of a benign line; here the bytes
/// are walked by [`next_special`], whose loop holds only the automaton's
/// state and the position (BENCHMARKS.md, "Redaction: dense vs benign").
///
/// Each step of one walk waits for the table load of the step before, and
/// the automaton is far larger than the L1 cache, so natively a walk ran
/// at the cache's latency per byte whatever its instruction count. A long
/// message is therefore walked in two parts at once
/// ([`walk_parts`]), independent loads in every step.
#[inline]
fn each_keyword(kw: &Keywords, hay: &[u8], mut f: impl FnMut(usize, usize, usize)) {
    let dfa = &kw.dfa;
    let Ok(start) = dfa.start_state(Anchored::No) else {
        return;
    };
    let mut report = |sid: StateID, at: usize| {
        if dfa.is_match(sid) {
            for k in 0..dfa.match_len(sid) {
                let pid = dfa.match_pattern(sid, k);
                f(pid.as_usize(), at - dfa.pattern_len(pid), at);
            }
        }
    };
    report(start, 0);
    let resume = if walked_in_two(hay.len(), kw.longest) {
        walk_parts::<2>(dfa, kw.longest, hay, start, &mut report)
    } else {
        Some((start, 0))
    };
    let Some((mut sid, mut at)) = resume else {
        return;
    };
    while let Some((next, end)) = next_special(dfa, hay, sid, at) {
        if dfa.is_dead(next) {
            return;
        }
        (sid, at) = (next, end);
        report(sid, at);
    }
}

/// Special states one part of [`walk_parts`] keeps before it gives up and
/// leaves the rest to a single walk.
const PART_HITS: usize = 16;

/// Walk `hay` as `N` parts at once and report, in order, every special
/// state a single walk from the start would meet; `None` when that is
/// done, or the state and position from which a single walk must go on
/// (a part met more than [`PART_HITS`]).
///
/// Part `j` is walked from `base[j]` in the start state, `longest` bytes
/// before the end of part `j - 1`: an automaton state is the longest suffix
/// read so far that begins a keyword, at most `longest` bytes, so from the
/// end of part `j - 1` on, part `j`'s state is the single walk's. Each
/// part keeps the special states it meets in its own range (after the end
/// of the part before, up to its own end); they are reported part by part
/// once all are walked, which is the single walk's order.
fn walk_parts<const N: usize>(
    dfa: &DFA,
    longest: usize,
    hay: &[u8],
    start: StateID,
    report: &mut impl FnMut(StateID, usize),
) -> Option<(StateID, usize)> {
    let len = hay.len();
    // Every part but the last takes `steps` bytes, the last the rest.
    let steps = (len + (N - 1) * longest).div_ceil(N);
    let base: [usize; N] = std::array::from_fn(|j| j * (steps - longest));
    let own_from: [usize; N] = std::array::from_fn(|j| if j == 0 { 0 } else { base[j] + longest });
    let end: [usize; N] = std::array::from_fn(|j| (base[j] + steps).min(len));
    let mut sid = [start; N];
    let mut hits = [[(start, 0usize); PART_HITS]; N];
    let mut kept = [0usize; N];
    let mut full = [false; N];
    let mut keep =
        |j: usize, s: StateID, at: usize, kept: &mut [usize; N], full: &mut [bool; N]| {
            if at > own_from[j] && !full[j] {
                if kept[j] == PART_HITS {
                    full[j] = true;
                } else {
                    hits[j][kept[j]] = (s, at);
                    kept[j] += 1;
                }
            }
        };
    // All parts together for as long as the shortest (the last) lasts.
    let together = end[N - 1] - base[N - 1];
    let mut k = 0;
    while k < together {
        k = next_special_of_parts(dfa, hay, &base, &mut sid, k, together);
        for j in 0..N {
            if dfa.is_special(sid[j]) {
                keep(j, sid[j], base[j] + k, &mut kept, &mut full);
            }
        }
    }
    // The few bytes the other parts have left, each alone.
    for j in 0..N - 1 {
        let (mut s, mut at) = (sid[j], base[j] + together);
        while let Some((next, e)) = next_special(dfa, &hay[..end[j]], s, at) {
            (s, at) = (next, e);
            keep(j, s, at, &mut kept, &mut full);
        }
    }
    for j in 0..N {
        for &(s, at) in &hits[j][..kept[j]] {
            report(s, at);
        }
        if full[j] {
            return Some(hits[j][PART_HITS - 1]);
        }
    }
    None
}

/// From state `sid` before `hay[at]`: the next special state (a match; the
/// dead state cannot occur in an unanchored search, and without a prefilter
/// the start state is not special) and the position after the byte that
/// led to it, or `None` at the end of `hay`. Kept out of line so that its
/// loop has registers enough for everything it uses.
#[inline(never)]
fn next_special(dfa: &DFA, hay: &[u8], mut sid: StateID, at: usize) -> Option<(StateID, usize)> {
    for (k, &byte) in hay.get(at..)?.iter().enumerate() {
        sid = dfa.next_state(Anchored::No, sid, byte);
        if dfa.is_special(sid) {
            return Some((sid, at + k + 1));
        }
    }
    None
}

/// Every part of [`walk_parts`] one byte a step, the byte at `base[j] + k`
/// for part `j`, from step `k` until one of them enters a special state or
/// step `until` is reached: the step reached.
#[inline(never)]
fn next_special_of_parts<const N: usize>(
    dfa: &DFA,
    hay: &[u8],
    base: &[usize; N],
    sid: &mut [StateID; N],
    mut k: usize,
    until: usize,
) -> usize {
    let mut s = *sid;
    while k < until {
        for j in 0..N {
            let Some(&byte) = hay.get(base[j] + k) else {
                break;
            };
            s[j] = dfa.next_state(Anchored::No, s[j], byte);
        }
        k += 1;
        if s.iter().fold(false, |any, &x| any | dfa.is_special(x)) {
            break;
        }
    }
    *sid = s;
    k
}

/// Does a token start at `i`? No letter, digit or `_` before it, unless that
/// byte ends an escape (`\n` in a JSON string, `%3D` in a URL).
fn token_start(b: &[u8], i: usize) -> bool {
    let Some(&p) = i.checked_sub(1).and_then(|k| b.get(k)) else {
        return true;
    };
    if !(p.is_ascii_alphanumeric() || p == b'_') {
        return true;
    }
    (i >= 2 && b[i - 2] == b'\\' && matches!(p, b'n' | b't' | b'r'))
        || (i >= 3 && b[i - 3] == b'%' && b[i - 2].is_ascii_hexdigit() && p.is_ascii_hexdigit())
}

/// Drop spans that lie inside a marker already in `msg` (`[REDACTED]`,
/// `[REDACTED:rule]`, `[REDACTED:rule:tag]`), so that a tag or rule name
/// inside one is never taken for a secret and a second pass changes
/// nothing. Only a complete, well-formed marker counts: log content can
/// contain the text `[REDACTED` (an attacker can put it there), and a span
/// that reaches outside a marker, or a PEM span, is always kept — else an
/// unclosed `[REDACTED` would switch redaction off for the rest of the
/// line (found by the `redact` fuzz target).
fn drop_inside_markers(msg: &str, spans: &mut Vec<Span>) {
    const OPEN: &str = "[REDACTED";
    /// Longest `:rule:tag` part of a marker.
    const MAX_LABEL: usize = 96;
    // A `[` is rare enough that looking at each one costs less than a
    // substring search, which builds its searcher at every call.
    let bytes = msg.as_bytes();
    if !memchr::memchr_iter(b'[', bytes).any(|i| bytes[i..].starts_with(OPEN.as_bytes())) {
        return;
    }
    let mut regions = Vec::new();
    let mut from = 0;
    while let Some(i) = msg[from..].find(OPEN) {
        let s = from + i;
        let rest = &msg.as_bytes()[s + OPEN.len()..];
        from = s + OPEN.len();
        let end = match rest.first() {
            Some(b']') => Some(0),
            Some(b':') => rest
                .iter()
                .take(MAX_LABEL + 1)
                .position(|&c| c == b']')
                .filter(|&j| {
                    rest[1..j].iter().all(|&c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'.')
                    })
                }),
            _ => None,
        };
        if let Some(j) = end {
            let e = s + OPEN.len() + j + 1;
            regions.push((s, e));
            from = e;
        }
    }
    if regions.is_empty() {
        return;
    }
    spans.retain(|sp| {
        sp.prio == PRIO_PEM || !regions.iter().any(|&(s, e)| s <= sp.start && sp.end <= e)
    });
}

/// What a build depends on: the config's values (not their positions) and
/// the value of the variable `hash_key_env` names, read now.
#[derive(PartialEq)]
struct BuildKey {
    cfg: RedactionConfig,
    env_key: Option<std::ffi::OsString>,
}

impl BuildKey {
    fn of(cfg: &RedactionConfig) -> BuildKey {
        BuildKey {
            cfg: cfg.clone(),
            env_key: cfg
                .hash_key_env
                .as_ref()
                .and_then(|var| std::env::var_os(var.get_ref())),
        }
    }
}

/// The HMAC key and tag length for `mode = "hash"`, or the reasons there
/// is none (pushed to `errors`).
fn hash_key(cfg: &RedactionConfig, errors: &mut Vec<RedactError>) -> Option<(String, usize)> {
    let hex_len = cfg
        .hash_length
        .as_ref()
        .map_or(DEFAULT_HASH_LENGTH, |l| *l.get_ref());
    if !(4..=32).contains(&hex_len) {
        errors.push(RedactError::HashLength { len: hex_len });
    }
    let key = match (&cfg.hash_key_env, &cfg.hash_key) {
        (Some(var), _) => match std::env::var(var.get_ref()) {
            Ok(v) => v,
            Err(_) => {
                errors.push(RedactError::HashKeyEnv {
                    var: var.get_ref().clone(),
                });
                return None;
            }
        },
        (None, Some(k)) => k.0.get_ref().clone(),
        (None, None) => {
            errors.push(RedactError::HashKeyMissing);
            return None;
        }
    };
    if key.len() < MIN_HASH_KEY {
        errors.push(RedactError::HashKeyShort { len: key.len() });
        return None;
    }
    (4..=32).contains(&hex_len).then_some((key, hex_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, AhoCorasickKind};

    /// xorshift64: reproducible, no dependency.
    fn next(seed: &mut u64) -> usize {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed as usize
    }

    #[test]
    fn each_keyword_reports_what_the_overlapping_iterator_does() {
        let patterns = [
            "pass",
            "password",
            "word",
            "sword",
            "a",
            "ab",
            "abc",
            "bc",
            "c",
            "SK",
            "sk-",
            "sk-ant-",
            "://",
            "\u{e9}",
            "-----BEGIN ",
            "s.",
            "ss",
            "sss",
        ];
        let kw = Keywords::build(&patterns).unwrap();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .unwrap();
        let pieces = [
            "a",
            "b",
            "c",
            "s",
            "w",
            "o",
            "r",
            "d",
            "p",
            "S",
            "K",
            "k",
            "-",
            "ant",
            "://",
            ":/",
            "\u{e9}",
            "\u{e8}",
            " ",
            "-----BEGIN ",
            "-----BEGIN",
            "pass",
            "word",
            ".",
            "x",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let (mut reported, mut split) = (0, 0);
        for round in 0..40_000 {
            // Half the messages are dense with keywords, half sparse (so
            // that the second part of a split walk often meets no match
            // or only late), and lengths reach past the split threshold.
            let sparse = round % 2 == 1;
            let mut hay = String::new();
            for _ in 0..next(&mut seed) % 96 {
                if sparse && !next(&mut seed).is_multiple_of(8) {
                    hay.push_str(["x", " ", "o", "xyzzy "][next(&mut seed) % 4]);
                } else {
                    hay.push_str(pieces[next(&mut seed) % pieces.len()]);
                }
            }
            if walked_in_two(hay.len(), kw.longest) {
                split += 1;
            }
            let mut got = Vec::new();
            each_keyword(&kw, hay.as_bytes(), |p, s, e| got.push((p, s, e)));
            let want: Vec<_> = ac
                .find_overlapping_iter(&hay)
                .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
                .collect();
            assert_eq!(got, want, "{hay:?}");
            reported += got.len();
        }
        assert!(reported > 20_000, "{reported} occurrences");
        assert!(split > 10_000, "only {split} messages walked in two parts");
    }

    /// Pieces of `pre1` tokens and what may follow them: token characters,
    /// guard characters of both classes, a non-ASCII character, and the
    /// inner literals of the alternatives.
    const TOKEN_PIECES: &[&str] = &[
        "a",
        "f",
        "Z",
        "0",
        "9",
        "x",
        "_",
        "-",
        ".",
        "!",
        " ",
        "=",
        "/",
        "\u{e9}",
        "T3BlbkFJ",
        "proj-",
        "or-v1-",
        "-1",
        "abcdef0123456789",
        "AbCdEfGhIjKlMnOp",
    ];

    /// A `pre1` rule's token found by a plain search with the guard checked
    /// by hand gives the span its full regex gives, on tokens of every
    /// length around the rules' lengths, followed by every kind of byte.
    #[test]
    fn guarded_tokens_match_as_the_full_regex() {
        let r = Redactor::new(&RedactionConfig::default()).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut rules, mut matched, mut fallback, mut missed) = (0, 0, 0, 0);
        for (d, rule) in r.inner.detectors.iter().zip(RULES) {
            let Some((guard, full)) = &d.guard else {
                continue;
            };
            rules += 1;
            for kw in rule.keywords {
                let shape = Shape::of(rule.pattern, kw);
                for _ in 0..4000 {
                    let mut hay = kw.to_string();
                    let target = next(&mut seed) % 130;
                    while hay.len() < target {
                        // Mostly runs of one alphabet, so that long tokens occur.
                        let piece = match next(&mut seed) % 10 {
                            0..=6 => TOKEN_PIECES[18 + next(&mut seed) % 2],
                            _ => TOKEN_PIECES[next(&mut seed) % TOKEN_PIECES.len()],
                        };
                        hay.push_str(piece);
                    }
                    let cut = (0..=hay.len().min(target))
                        .rev()
                        .find(|&i| hay.is_char_boundary(i))
                        .unwrap_or(0);
                    hay.truncate(cut.max(kw.len()));
                    hay.push_str(TOKEN_PIECES[next(&mut seed) % TOKEN_PIECES.len()]);
                    let want = full
                        .captures(&hay)
                        .and_then(|c| c.get(1))
                        .map(|m| (m.start(), m.end()));
                    assert_eq!(
                        Inner::anchored_match(d, None, &hay),
                        want,
                        "{}: {hay:?}",
                        rule.name
                    );
                    assert_eq!(
                        Inner::anchored_match(d, shape.as_ref(), &hay),
                        want,
                        "{} (shape): {hay:?}",
                        rule.name
                    );
                    match (d.re.find(&hay), want) {
                        (Some(m), _)
                            if guard.continued_by(hay.as_bytes().get(m.end()).copied()) =>
                        {
                            fallback += 1
                        }
                        (_, Some(_)) => matched += 1,
                        _ => missed += 1,
                    }
                }
            }
        }
        assert_eq!(rules, 7);
        // Every path was taken: a match, a guard that failed, no match.
        assert!(
            matched > 500 && fallback > 500 && missed > 500,
            "{matched} {fallback} {missed}"
        );
    }

    /// A lead rule's secret found from its match's start by the lead's
    /// alternatives and an anchored search of the rest is the group the
    /// capture search gives, for every match, over the rules' own cases
    /// behind and before every kind of context (escapes, `%` runs,
    /// backslashes, `/bot`, non-ASCII, word bytes, digits) and mutated.
    #[test]
    fn lead_rules_find_the_group_the_capture_search_finds() {
        let r = Redactor::new(&RedactionConfig::default()).unwrap();
        let cases = super::super::rules::cases::all();
        let befores = [
            "", " ", "x", "_", "9", "%", "%3D", "%3", "%%3D", "\\n", "\\\\n", "\\x", "/bot", "/bo",
            "a/bot", "é", "\n", "=", "-", ".", "~", "%zz", "\\",
        ];
        let afters = ["", " ", "x", "_", "-", "=", "é", ".", "9", "\\n", "%20"];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let (mut rules, mut matches) = (0, 0);
        for (d, rule) in r.inner.detectors.iter().zip(RULES) {
            let Some((lead, rest)) = &d.lead else {
                continue;
            };
            rules += 1;
            let mine: Vec<&str> = cases
                .iter()
                .filter(|c| c.rule == rule.name)
                .flat_map(|c| [c.secret.as_str(), c.line.as_str(), c.near.as_str()])
                .collect();
            assert!(!mine.is_empty(), "{}: no case", rule.name);
            let mut texts = Vec::new();
            for m in &mine {
                for b in befores {
                    for a in afters {
                        texts.push(format!("{b}{m}{a}"));
                        texts.push(format!("{b}{m}{a}{b}{m}"));
                    }
                }
                // Mutations: a byte replaced, dropped or doubled.
                for _ in 0..300 {
                    let mut t: Vec<char> =
                        format!("{}{m}", befores[next(&mut seed) % befores.len()])
                            .chars()
                            .collect();
                    let i = next(&mut seed) % t.len();
                    match next(&mut seed) % 3 {
                        0 => t[i] = ['%', '\\', '/', 'a', '0', ' ', '_', 'é'][next(&mut seed) % 8],
                        1 => {
                            t.remove(i);
                        }
                        _ => t.insert(i, t[i]),
                    }
                    texts.push(t.into_iter().collect());
                }
            }
            for text in &texts {
                let want: Vec<(usize, usize)> =
                    d.re.captures_iter(text)
                        .map(|c| {
                            let g = c.get(1).expect("group 1 takes part in every match");
                            (g.start(), g.end())
                        })
                        .collect();
                let got: Vec<Option<(usize, usize)>> =
                    d.re.find_iter(text)
                        .map(|m| Inner::after_lead(*lead, rest, text, m.start(), m.end()))
                        .collect();
                let want: Vec<Option<(usize, usize)>> = want.into_iter().map(Some).collect();
                assert_eq!(got, want, "{} on {text:?}", rule.name);
                matches += got.len();
            }
        }
        // terraform_cloud_token, telegram_bot_token, mailchimp_api_key,
        // new_relic_key, maxmind_license_key.
        assert_eq!(rules, 5, "rules written with a token lead");
        assert!(matches > 5_000, "only {matches} matches compared");
    }
}
