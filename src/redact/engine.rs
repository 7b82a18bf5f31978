//! The engine: runs PEM, provider, key-aware and user rules over a message
//! and replaces what they find.
//!
//! Cost model: most lines contain no secret, so a line first goes through two
//! Aho-Corasick automata (provider keywords plus the PEM header and `://`,
//! case-sensitive; sensitive key stems, case-insensitive). A line with no hit
//! and no open PEM block is returned untouched without allocating. Only the
//! regexes of rules whose keywords occurred run afterwards.
//!
//! Every detector reports byte spans; overlapping spans are merged (the
//! union is replaced, so no detector can leave a tail of another's secret
//! visible) and each merged span becomes `[REDACTED:<rule>]`, where the rule
//! is that of the span that starts first (on a tie: PEM, then provider, then
//! key rules). Allowlisted values are dropped before merging; PEM spans are
//! never allowlisted. Output is a pure function of input and stream state.
//!
//! Metric counters are resolved per rule when the engine is built, so the hot
//! path only does an atomic add.

use std::collections::HashSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use prometheus_client::metrics::counter::Counter;
use regex::{Regex, RegexSet};
use serde_json::{Map, Value};

use super::config::{one_line, valid_rule_name, RedactionConfig};
use super::keys::{skip_value, Context, Family, KeyError, KeyMatcher};
use super::pem::{self, StreamState};
use super::rules::RULES;

/// Index of a rule name (its label and marker).
pub type RuleId = u16;

/// Tie-break order between detectors whose spans start at the same byte.
pub const PRIO_PEM: u8 = 0;
pub const PRIO_RULE: u8 = 1;
pub const PRIO_KEY: u8 = 2;

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
}

/// What an Aho-Corasick keyword stands for.
#[derive(Clone, Copy)]
enum Owner {
    Rule(usize),
    Pem,
    /// A sensitive key stem (key-aware scan).
    Key,
    /// `://`: a URL that may carry userinfo.
    Url,
}

/// Keyword hits of one message: a bit per built-in rule.
#[derive(Default)]
struct Hits {
    rules: u128,
    pem: bool,
    url: bool,
    /// Byte ranges of key stems, in order of their end.
    stems: Vec<(usize, usize)>,
}

/// Everything built from one config; shared behind an `Arc`.
struct Inner {
    detectors: Vec<Detector>,
    /// Index of the first user pattern in `detectors` (they have no keywords
    /// and run on every message).
    custom_from: usize,
    keywords: AhoCorasick,
    owners: Vec<Owner>,
    keys: KeyMatcher,
    allow: HashSet<String>,
    allow_re: Option<RegexSet>,
    markers: Vec<String>,
    counters: Vec<Counter>,
    pem_rule: RuleId,
    unterminated: Counter,
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
        Redactor::build(cfg)
    }

    /// What [`Redactor::new`] would reject, without its start-up warning.
    pub fn check(cfg: &RedactionConfig) -> Result<(), RedactErrors> {
        Redactor::build(cfg).map(drop)
    }

    fn build(cfg: &RedactionConfig) -> Result<Redactor, RedactErrors> {
        let internal = |e: String| RedactErrors(vec![RedactError::Internal(e)]);
        let mut errors = Vec::new();
        let mut labels = Labels::default();
        let mut detectors = Vec::new();
        let mut kw = Vec::new();
        let mut owners = Vec::new();
        if RULES.len() > 128 {
            return Err(internal("more than 128 built-in redaction rules".into()));
        }
        for (i, r) in RULES.iter().enumerate() {
            let re = Regex::new(r.pattern)
                .map_err(|e| internal(format!("built-in rule {}: {e}", r.name)))?;
            detectors.push(Detector {
                re,
                group: r.group,
                check: r.check,
                id: labels.id(r.name),
            });
            for k in r.keywords {
                kw.push(*k);
                owners.push(Owner::Rule(i));
            }
        }
        let mut kw: Vec<String> = kw.into_iter().map(str::to_string).collect();
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
        // table-driven automaton and nothing else.
        let keywords = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&kw)
            .map_err(|e| internal(e.to_string()))?;
        let pem_rule = labels.id("pem_private_key");
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
                keys,
                allow: cfg.allow.iter().map(|a| a.get_ref().clone()).collect(),
                allow_re,
                markers,
                counters,
                pem_rule,
                unterminated,
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
        let mut hits = Hits::default();
        for m in self.keywords.find_overlapping_iter(msg.as_str()) {
            match self.owners[m.pattern().as_usize()] {
                Owner::Rule(i) => hits.rules |= 1u128 << i,
                Owner::Pem => hits.pem = true,
                Owner::Key => hits.stems.push((m.start(), m.end())),
                Owner::Url => hits.url = true,
            }
        }
        let keyish = !hits.stems.is_empty() || hits.url;
        let custom = self.detectors.len() > self.custom_from;
        if hits.rules == 0 && !hits.pem && !keyish && !custom && !state.in_private_key() {
            return 0;
        }
        let text = msg.as_str();
        let mut spans = Vec::new();
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
        let mut bits = hits.rules;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            self.run_detector(&self.detectors[i], text, &mut spans);
        }
        for d in &self.detectors[self.custom_from..] {
            self.run_detector(d, text, &mut spans);
        }
        if keyish {
            self.keys.scan(text, &hits.stems, hits.url, &mut spans);
        }
        if unterminated > 0 {
            self.unterminated.inc_by(unterminated as u64);
        }
        self.apply(msg, spans)
    }

    fn run_detector(&self, d: &Detector, text: &str, spans: &mut Vec<Span>) {
        let prio = PRIO_RULE;
        let ok = |s: &str| d.check.is_none_or(|f| f(s));
        if d.group == 0 {
            for m in d.re.find_iter(text) {
                if ok(m.as_str()) {
                    spans.push(Span::new(m.start(), m.end(), d.id, prio));
                }
            }
        } else {
            for c in d.re.captures_iter(text) {
                if let Some(m) = c.get(d.group) {
                    if ok(m.as_str()) {
                        spans.push(Span::new(m.start(), m.end(), d.id, prio));
                    }
                }
            }
        }
    }

    fn allowed(&self, value: &str) -> bool {
        self.allow.contains(value) || self.allow_re.as_ref().is_some_and(|r| r.is_match(value))
    }

    /// Replace the union of `spans` in `msg`; returns the number of markers.
    fn apply(&self, msg: &mut String, mut spans: Vec<Span>) -> usize {
        spans.retain(|s| {
            s.start < s.end && (s.prio == PRIO_PEM || !self.allowed(&msg[s.start..s.end]))
        });
        if spans.is_empty() {
            return 0;
        }
        spans.sort_unstable_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(a.prio.cmp(&b.prio))
                .then(b.end.cmp(&a.end))
        });
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        let mut out = String::with_capacity(msg.len());
        let mut at = 0;
        for s in &merged {
            out.push_str(&msg[at..s.start]);
            out.push_str(&self.markers[s.rule as usize]);
            self.counters[s.rule as usize].inc();
            at = s.end;
        }
        out.push_str(&msg[at..]);
        *msg = out;
        merged.len()
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
            Value::Number(_) if kr.is_some_and(|k| k.family == Family::Password) => {
                if let Some(kr) = kr {
                    *v = Value::String(self.markers[kr.rule as usize].clone());
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
