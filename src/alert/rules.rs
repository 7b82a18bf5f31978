//! Compiled rules: matching an event, and the window state that decides when
//! a rule fires.
//!
//! A rule is evaluated on the engine task only, so window state needs no
//! locks. Every rule type is a *condition* re-evaluated at each relevant event
//! (or tick, for absence): while it holds, each evaluation is a "firing" that
//! either notifies or is suppressed — which is what makes suppressed matches
//! count toward the next notification. Windows are measured on the engine's
//! [`Clock`](super::clock::Clock) at evaluation time, not on event `ts`:
//! a window means "events the agent saw in the last N", immune to skewed or
//! missing application timestamps (a backlog read after a restart counts as
//! arriving now), and tests drive time by hand.
//!
//! Memory per rule is bounded: a threshold keeps at most `count` timestamps;
//! a ratio keeps 60 buckets over its window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use std::ops::Range;

use regex_automata::{meta, util::syntax, MatchKind};
use serde_json::Value;
use toml::Spanned;

use super::config::{FieldCond, MatchConfig, RuleConfig, RuleType, Severity};
use crate::event::{Event, IdField, Level, Tier};

/// Default `suppress_for`.
pub const DEFAULT_SUPPRESS: Duration = Duration::from_secs(600);

/// A compiled `[alerts.rules.match]`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    tiers: Vec<Tier>,
    kinds: Vec<String>,
    lvls: Vec<Level>,
    srcs: Vec<String>,
    ids: Vec<(IdField, Cond)>,
    msg: Option<Regex>,
    /// (dotted path split, condition)
    data: Vec<(Vec<String>, Cond)>,
}

#[derive(Debug, Clone)]
struct Cond {
    equals: Option<Value>,
    regex: Option<Regex>,
    exists: Option<bool>,
}

/// One problem in a `[[alerts.rules]]` table, at the value it is about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{problem}")]
pub struct RuleError {
    /// Byte span in the (interpolated) config text.
    pub span: Range<usize>,
    pub problem: RuleProblem,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleProblem {
    #[error("rule name is empty")]
    EmptyName,
    #[error("channels is empty; name at least one [alerts.channels.*] table")]
    NoChannels,
    #[error("{0} must be > 0")]
    Zero(&'static str),
    #[error("count must be at least 1")]
    CountZero,
    #[error("min_base must be at least 1")]
    MinBaseZero,
    #[error("rule \"{rule}\" of type {rule_type:?} needs `{key}`")]
    Needs {
        rule: String,
        rule_type: &'static str,
        key: &'static str,
    },
    #[error("`{key}` does not apply to a rule of type {rule_type:?}")]
    Unused {
        key: &'static str,
        rule_type: &'static str,
    },
    #[error("ratio {0} is outside (0, 1]; write e.g. 0.5 for half")]
    Ratio(f64),
    #[error("invalid regex {pattern:?}: {detail}")]
    Regex { pattern: String, detail: String },
}

/// Every problem of one rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct RuleErrors(pub Vec<RuleError>);

/// A rule's compiled regex (`msg`, or a field condition's `regex`): what
/// `regex::Regex::new` builds — the same syntax, limits and matches — less
/// the parts that only make a search faster: a literal prefilter, a full
/// DFA and a one-pass DFA. They were most of what compiling a rule set
/// cost, and the write path runs a msg regex only on messages that already
/// hold one of its literals ([`super::matching`]); the lazy DFA (and the
/// NFA simulations behind it) decide alone.
#[derive(Debug, Clone)]
pub struct Regex {
    re: meta::Regex,
    pattern: Arc<str>,
}

impl Regex {
    /// Build `pattern`; the error text is what `regex::Regex::new` gives.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let config = meta::Config::new()
            // `regex`'s defaults.
            .nfa_size_limit(Some(10 * (1 << 20)))
            .hybrid_cache_capacity(2 * (1 << 20))
            .match_kind(MatchKind::LeftmostFirst)
            .utf8_empty(true)
            // Accelerators only.
            .auto_prefilter(false)
            .dfa(false)
            .onepass(false);
        meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::default().utf8(true))
            .build(pattern)
            .map(|re| Regex {
                re,
                pattern: Arc::from(pattern),
            })
            .map_err(|e| match (e.size_limit(), e.syntax_error()) {
                (Some(limit), _) => {
                    format!("Compiled regex exceeds size limit of {limit} bytes.")
                }
                (None, Some(syntax)) => syntax.to_string(),
                (None, None) => e.to_string(),
            })
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.re.is_match(haystack)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Regexes compiled so far, by pattern. `check` and the agent's config load
/// compile every rule to validate it, and starting (or reloading) the engine
/// compiles the same rules again: each pattern is compiled once (a `Regex`
/// clone shares the compiled program). Bounded: emptied when full.
static REGEXES: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(Default::default);
const REGEXES_MAX: usize = 1024;

fn compile_regex(r: &Spanned<String>, errors: &mut Vec<RuleError>) -> Option<Regex> {
    let pattern = r.get_ref();
    // A poisoned lock only means a panic while it was held; the map holds
    // whole values either way.
    let memo = || REGEXES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = memo().get(pattern) {
        return Some(re.clone());
    }
    match Regex::new(pattern) {
        Ok(re) => {
            let mut m = memo();
            if m.len() >= REGEXES_MAX {
                m.clear();
            }
            m.insert(pattern.clone(), re.clone());
            Some(re)
        }
        Err(detail) => {
            let last = detail.lines().last().unwrap_or("invalid regex").trim();
            errors.push(RuleError {
                span: r.span(),
                problem: RuleProblem::Regex {
                    pattern: r.get_ref().clone(),
                    detail: last.to_string(),
                },
            });
            None
        }
    }
}

impl Cond {
    fn compile(c: &FieldCond, errors: &mut Vec<RuleError>) -> Cond {
        Cond {
            equals: c.equals.as_ref().map(toml_to_json),
            regex: c.regex.as_ref().and_then(|r| compile_regex(r, errors)),
            exists: c.exists,
        }
    }

    fn holds(&self, v: Option<&Value>) -> bool {
        let v = v.filter(|v| !v.is_null());
        if let Some(want) = self.exists {
            if want != v.is_some() {
                return false;
            }
        }
        if let Some(eq) = &self.equals {
            match v {
                Some(Value::Number(a)) if eq.is_number() => {
                    if a.as_f64() != eq.as_f64() {
                        return false;
                    }
                }
                Some(v) if v == eq => {}
                _ => return false,
            }
        }
        if let Some(re) = &self.regex {
            let hit = match v {
                Some(Value::String(s)) => re.is_match(s),
                Some(Value::Number(n)) => re.is_match(&n.to_string()),
                Some(Value::Bool(b)) => re.is_match(if *b { "true" } else { "false" }),
                _ => false,
            };
            if !hit {
                return false;
            }
        }
        true
    }
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

impl Matcher {
    /// Compile a match table; its regex errors go to `errors`.
    pub fn compile(m: &MatchConfig, errors: &mut Vec<RuleError>) -> Matcher {
        let mut ids = Vec::new();
        for (id, c) in [
            (IdField::ProjectId, &m.project_id),
            (IdField::BuildId, &m.build_id),
            (IdField::UserId, &m.user_id),
            (IdField::ReqId, &m.req_id),
        ] {
            if let Some(c) = c {
                ids.push((id, Cond::compile(c, errors)));
            }
        }
        let mut data = Vec::new();
        for (path, c) in &m.data {
            data.push((
                path.split('.').map(String::from).collect(),
                Cond::compile(c, errors),
            ));
        }
        Matcher {
            tiers: m.tier.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            kinds: m.kind.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            lvls: m.lvl.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            srcs: m.src.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
            ids,
            msg: m.msg.as_ref().and_then(|r| compile_regex(r, errors)),
            data,
        }
    }

    /// The conditions that cost nothing to check (no regex, no JSON walk);
    /// used on the write path to skip events no rule could match.
    pub fn cheap_match(&self, e: &Event) -> bool {
        (self.tiers.is_empty() || self.tiers.contains(&e.tier))
            && (self.lvls.is_empty() || self.lvls.contains(&e.lvl))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && (self.srcs.is_empty() || self.srcs.contains(&e.src))
    }

    /// The tier and lvl conditions alone (for the write-path index).
    pub fn tier_lvl_match(&self, tier: Tier, lvl: Level) -> bool {
        (self.tiers.is_empty() || self.tiers.contains(&tier))
            && (self.lvls.is_empty() || self.lvls.contains(&lvl))
    }

    /// Does the matcher have kind or src lists?
    pub fn has_string_conditions(&self) -> bool {
        !self.kinds.is_empty() || !self.srcs.is_empty()
    }

    /// The kind and src conditions alone.
    pub fn strings_match(&self, e: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && (self.srcs.is_empty() || self.srcs.contains(&e.src))
    }

    /// Has the matcher a condition beyond tier, lvl, kind and src (ids,
    /// msg, data)?
    pub fn has_full_conditions(&self) -> bool {
        !self.ids.is_empty() || self.msg.is_some() || !self.data.is_empty()
    }

    /// The `msg` regex as written.
    pub fn msg_pattern(&self) -> Option<&str> {
        self.msg.as_ref().map(Regex::as_str)
    }

    pub fn matches(&self, e: &Event) -> bool {
        if !self.cheap_match(e) {
            return false;
        }
        for (id, c) in &self.ids {
            let v = e.id(*id).map(|s| Value::String(s.to_string()));
            if !c.holds(v.as_ref()) {
                return false;
            }
        }
        if let Some(re) = &self.msg {
            if !re.is_match(&e.msg) {
                return false;
            }
        }
        for (path, c) in &self.data {
            if !c.holds(lookup(e.data.as_ref(), path)) {
                return false;
            }
        }
        true
    }

    /// A tier/kind to fingerprint absence notifications with (no event).
    pub fn describe(&self) -> (String, String) {
        let tier = self.tiers.first().map_or("any", |t| t.as_str()).to_string();
        let kind = self.kinds.first().cloned().unwrap_or_else(|| "any".into());
        (tier, kind)
    }
}

fn lookup<'a>(
    data: Option<&'a serde_json::Map<String, Value>>,
    path: &[String],
) -> Option<&'a Value> {
    // A key containing dots as written wins over walking.
    let data = data?;
    if let Some(v) = data.get(&path.join(".")) {
        return Some(v);
    }
    let (first, rest) = path.split_first()?;
    let mut v = data.get(first)?;
    for k in rest {
        v = v.as_object()?.get(k)?;
    }
    Some(v)
}

/// What a rule needs to decide, beyond its matcher.
#[derive(Debug, Clone)]
pub enum Kind {
    Any,
    Threshold {
        count: usize,
        window_ms: i64,
    },
    Ratio {
        base: Matcher,
        ratio: f64,
        min_base: u64,
        window_ms: i64,
    },
    Absence {
        window_ms: i64,
    },
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub channels: Vec<String>,
    pub suppress_ms: i64,
    pub escalate_ms: Option<i64>,
    pub matcher: Matcher,
    pub kind: Kind,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Rule {
    /// Compile a rule config: the one place that checks it. Every problem
    /// is reported (with its span), and nothing required is defaulted.
    /// Cross-references (channel names, unique rule names) are checked by
    /// `AlertsConfig::validate`, which knows the other tables.
    pub fn compile(c: &RuleConfig) -> Result<Rule, RuleErrors> {
        let mut errors = Vec::new();
        let mut err = |span: Range<usize>, problem| errors.push(RuleError { span, problem });
        let name = c.name.get_ref().clone();
        if name.is_empty() {
            err(c.name.span(), RuleProblem::EmptyName);
        }
        if c.channels.get_ref().is_empty() {
            err(c.channels.span(), RuleProblem::NoChannels);
        }
        for (key, d) in [
            ("suppress_for", &c.suppress_for),
            ("window", &c.window),
            ("escalate_after", &c.escalate_after),
        ] {
            if let Some(d) = d.as_ref().filter(|d| d.get_ref().get().is_zero()) {
                err(d.span(), RuleProblem::Zero(key));
            }
        }
        let rule_type = match c.rule_type {
            RuleType::Any => "any",
            RuleType::Threshold => "threshold",
            RuleType::Ratio => "ratio",
            RuleType::Absence => "absence",
        };
        // What the type needs and what it does not take.
        let (needs, takes): (&[&str], &[&str]) = match c.rule_type {
            RuleType::Any => (&[], &[]),
            RuleType::Threshold => (&["count", "window"], &["count", "window"]),
            RuleType::Ratio => (&["window", "ratio", "base"], &["window", "ratio", "base"]),
            RuleType::Absence => (&["window"], &["window"]),
        };
        let present = [
            ("window", c.window.as_ref().map(|s| s.span())),
            ("count", c.count.as_ref().map(|s| s.span())),
            ("ratio", c.ratio.as_ref().map(|s| s.span())),
            ("base", c.base.as_ref().map(|s| s.span())),
        ];
        for &key in needs {
            if present.iter().any(|(k, span)| *k == key && span.is_none()) {
                let rule = name.clone();
                err(
                    c.name.span(),
                    RuleProblem::Needs {
                        rule,
                        rule_type,
                        key,
                    },
                );
            }
        }
        for (key, span) in present {
            if let Some(span) = span.filter(|_| !takes.contains(&key)) {
                err(span, RuleProblem::Unused { key, rule_type });
            }
        }
        if let Some(n) = c.count.as_ref().filter(|n| *n.get_ref() == 0) {
            err(n.span(), RuleProblem::CountZero);
        }
        if let Some(r) = &c.ratio {
            let v = *r.get_ref();
            if !(v > 0.0 && v <= 1.0) {
                err(r.span(), RuleProblem::Ratio(v));
            }
        }
        if c.min_base == Some(0) {
            err(c.name.span(), RuleProblem::MinBaseZero);
        }
        let matcher = Matcher::compile(&c.matches, &mut errors);
        let base = c
            .base
            .as_ref()
            .map(|b| Matcher::compile(b.get_ref(), &mut errors));
        let window_ms = c.window.as_ref().map(|w| ms(w.get_ref().get()));
        // `None` only when something required is missing, which is an error
        // above: nothing is defaulted here.
        let kind = match c.rule_type {
            RuleType::Any => Some(Kind::Any),
            RuleType::Threshold => {
                window_ms
                    .zip(c.count.as_ref())
                    .map(|(window_ms, n)| Kind::Threshold {
                        count: *n.get_ref() as usize,
                        window_ms,
                    })
            }
            RuleType::Ratio => match (window_ms, &c.ratio, base) {
                (Some(window_ms), Some(ratio), Some(base)) => Some(Kind::Ratio {
                    base,
                    ratio: *ratio.get_ref(),
                    // Documented default: one base match is enough.
                    min_base: c.min_base.unwrap_or(1),
                    window_ms,
                }),
                _ => None,
            },
            RuleType::Absence => window_ms.map(|window_ms| Kind::Absence { window_ms }),
        };
        let kind = match kind {
            Some(kind) if errors.is_empty() => kind,
            _ => return Err(RuleErrors(errors)),
        };
        Ok(Rule {
            severity: c.severity,
            channels: {
                // Listing a channel twice must not notify it twice.
                let mut seen: Vec<String> = Vec::new();
                for ch in c.channels.get_ref() {
                    if !seen.contains(ch.get_ref()) {
                        seen.push(ch.get_ref().clone());
                    }
                }
                seen
            },
            suppress_ms: ms(c
                .suppress_for
                .as_ref()
                .map_or(DEFAULT_SUPPRESS, |d| d.get_ref().get())),
            escalate_ms: c.escalate_after.as_ref().map(|d| ms(d.get_ref().get())),
            matcher,
            kind,
            name,
        })
    }

    pub fn window_ms(&self) -> Option<i64> {
        match self.kind {
            Kind::Any => None,
            Kind::Threshold { window_ms, .. }
            | Kind::Ratio { window_ms, .. }
            | Kind::Absence { window_ms } => Some(window_ms),
        }
    }
}

/// Per-rule window state, owned by the engine task.
#[derive(Debug)]
pub enum Window {
    Stateless,
    /// The last `count` match times (oldest first).
    Threshold(VecDeque<i64>),
    Ratio {
        hits: Buckets,
        base: Buckets,
    },
    /// When the rule last saw a match (or started).
    Absence {
        last_seen: i64,
    },
}

/// What one event did to a rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not relevant to the rule.
    Ignored,
    /// Counted, but the condition does not hold.
    Counted,
    /// The condition holds: notify (or suppress) with this event.
    Fires,
}

impl Window {
    pub fn new(rule: &Rule, now: i64) -> Window {
        match &rule.kind {
            Kind::Any => Window::Stateless,
            Kind::Threshold { count, .. } => Window::Threshold(VecDeque::with_capacity(*count)),
            Kind::Ratio { window_ms, .. } => Window::Ratio {
                hits: Buckets::new(*window_ms),
                base: Buckets::new(*window_ms),
            },
            Kind::Absence { .. } => Window::Absence { last_seen: now },
        }
    }

    /// Account for one event at `now`.
    pub fn observe(&mut self, rule: &Rule, e: &Event, now: i64) -> Outcome {
        let base = matches!(&rule.kind, Kind::Ratio { base, .. } if base.matches(e));
        self.observe_hits(rule, rule.matcher.matches(e), base, now)
    }

    /// Account at `now` for one event that the rule's `match` (`hit`) and a
    /// ratio rule's `base` did or did not match (the write path decided,
    /// see [`super::matching`]).
    pub fn observe_hits(&mut self, rule: &Rule, hit: bool, is_base: bool, now: i64) -> Outcome {
        match (&rule.kind, self) {
            (Kind::Any, _) => {
                if hit {
                    Outcome::Fires
                } else {
                    Outcome::Ignored
                }
            }
            (Kind::Threshold { count, window_ms }, Window::Threshold(times)) => {
                if !hit {
                    return Outcome::Ignored;
                }
                if times.len() == *count {
                    times.pop_front();
                }
                times.push_back(now);
                match times.front() {
                    Some(&oldest) if times.len() == *count && now - oldest < *window_ms => {
                        Outcome::Fires
                    }
                    _ => Outcome::Counted,
                }
            }
            (
                Kind::Ratio {
                    ratio, min_base, ..
                },
                Window::Ratio { hits, base },
            ) => {
                let is_hit = hit;
                if !is_hit && !is_base {
                    return Outcome::Ignored;
                }
                if is_hit {
                    hits.add(now);
                }
                if is_base {
                    base.add(now);
                }
                let (h, b) = (hits.total(now), base.total(now));
                if b >= *min_base && (h as f64) >= ratio * (b as f64) {
                    Outcome::Fires
                } else {
                    Outcome::Counted
                }
            }
            (Kind::Absence { .. }, Window::Absence { last_seen }) => {
                if hit {
                    *last_seen = now;
                    Outcome::Counted
                } else {
                    Outcome::Ignored
                }
            }
            _ => Outcome::Ignored,
        }
    }

    /// Matches the condition currently rests on: the threshold's `count`,
    /// the ratio's matches in the window, else 1. A new episode's first
    /// notification reports this many.
    pub fn weight(&mut self, now: i64) -> u64 {
        match self {
            Window::Threshold(times) => times.len() as u64,
            Window::Ratio { hits, .. } => hits.total(now).max(1),
            Window::Stateless | Window::Absence { .. } => 1,
        }
    }

    /// Move the window's times by `by` ms: the wall clock stepped by that
    /// much more than real time passed, and the window keeps real time.
    pub fn shift(&mut self, by: i64) {
        match self {
            Window::Stateless => {}
            Window::Threshold(times) => times.iter_mut().for_each(|t| *t += by),
            Window::Ratio { hits, base } => {
                hits.shift(by);
                base.shift(by);
            }
            Window::Absence { last_seen } => *last_seen += by,
        }
    }

    /// For absence rules: has the match been missing for the window at `now`?
    pub fn absent(&self, rule: &Rule, now: i64) -> bool {
        match (&rule.kind, self) {
            (Kind::Absence { window_ms }, Window::Absence { last_seen }) => {
                now - *last_seen >= *window_ms
            }
            _ => false,
        }
    }
}

/// Counts over a sliding window in 1/60-window buckets: bounded memory at
/// any event rate, at the price of the window's edge being that coarse.
#[derive(Debug)]
pub struct Buckets {
    width: i64,
    /// (bucket start, count), oldest first.
    slots: VecDeque<(i64, u64)>,
    window_ms: i64,
}

impl Buckets {
    /// Move every bucket by `by` ms (a wall-clock step), kept aligned.
    fn shift(&mut self, by: i64) {
        for (s, _) in self.slots.iter_mut() {
            *s += by - (*s + by).rem_euclid(self.width);
        }
    }

    fn new(window_ms: i64) -> Buckets {
        Buckets {
            width: (window_ms / 60).max(1),
            slots: VecDeque::new(),
            window_ms,
        }
    }

    fn add(&mut self, now: i64) {
        let start = now - now.rem_euclid(self.width);
        match self.slots.back_mut() {
            Some((s, n)) if *s == start => *n += 1,
            _ => self.slots.push_back((start, 1)),
        }
    }

    fn total(&mut self, now: i64) -> u64 {
        // A bucket counts while any of it is inside (now - window, now].
        while let Some(&(s, _)) = self.slots.front() {
            if s + self.width <= now - self.window_ms {
                self.slots.pop_front();
            } else {
                break;
            }
        }
        self.slots.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Rule {
        let c: RuleConfig = toml::from_str(toml_text).unwrap();
        Rule::compile(&c).unwrap()
    }

    fn problems(toml_text: &str) -> Vec<RuleProblem> {
        let c: RuleConfig = toml::from_str(toml_text).unwrap();
        Rule::compile(&c)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.problem)
            .collect()
    }

    /// A rule regex matches what `regex::Regex` matches, and refuses what
    /// it refuses with the same words.
    #[test]
    fn regex_is_regex_without_accelerators() {
        let hays = [
            "",
            "Kernel panic - not syncing",
            "\u{212A}ERNEL PANIC",
            "FATAL: x",
            "not fatalistic",
            "fatal\u{e9}",
            "Service foo.service Restarting",
            "GET / HTTP/1.1\" 503 12",
            "ü disk full ü",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
        ];
        for p in [
            "(?i)kernel panic",
            "(?i)\\bfatal\\b|\\bpanic(ked)?\\b",
            "(?i)(service|unit|process) .{0,40}(restart(ed|ing)|exited with|terminated)",
            r#"HTTP/1\.[01]" 5[0-9][0-9] "#,
            "^a+b$",
            "disk full",
            "(a|aa)*b",
        ] {
            let ours = Regex::new(p).unwrap();
            let theirs = regex::Regex::new(p).unwrap();
            assert_eq!(ours.as_str(), p);
            for h in hays {
                assert_eq!(ours.is_match(h), theirs.is_match(h), "{p} on {h:?}");
            }
        }
        for p in [
            "(unclosed",
            "a{2,1}",
            "[z-a]",
            "\\p{NoSuchClass}",
            "\\w{1000}{1000}",
        ] {
            let ours = Regex::new(p).unwrap_err();
            let theirs = regex::Regex::new(p).unwrap_err().to_string();
            assert_eq!(ours, theirs, "{p}");
        }
        let big = Regex::new("\\w{1000}{1000}").unwrap_err();
        assert!(big.contains("exceeds size limit"), "{big}");
    }

    #[test]
    fn compile_refuses_what_it_used_to_default() {
        let p =
            problems("name = \"t\"\ntype = \"threshold\"\nchannels = [\"w\"]\nwindow = \"1m\"\n");
        assert!(
            matches!(&p[..], [RuleProblem::Needs { key: "count", .. }]),
            "{p:?}"
        );
        let p = problems("name = \"r\"\ntype = \"ratio\"\nchannels = [\"w\"]\n");
        assert_eq!(p.len(), 3, "window, ratio and base: {p:?}");
        let p = problems(
            "name = \"r\"\ntype = \"ratio\"\nratio = 0.5\nmin_base = 0\nwindow = \"1m\"\nchannels = [\"w\"]\n[base]\ntier = \"build\"\n",
        );
        assert_eq!(p, [RuleProblem::MinBaseZero]);
        let p = problems("name = \"a\"\nchannels = [\"w\"]\ncount = 3\n[match]\nmsg = \"(x\"\n");
        assert!(
            matches!(
                &p[..],
                [
                    RuleProblem::Unused { key: "count", .. },
                    RuleProblem::Regex { .. }
                ]
            ),
            "{p:?}"
        );
    }

    fn ev(tier: Tier, lvl: Level, msg: &str) -> Event {
        let mut e = Event::empty(tier);
        e.lvl = lvl;
        e.kind = "line".into();
        e.msg = msg.into();
        e
    }

    #[test]
    fn match_conditions() {
        let r = rule(
            r#"name = "x"
channels = ["w"]
[match]
tier = ["build", "deploy"]
lvl = "error"
msg = "(?i)failed"
build_id = { exists = true }
data.status = { equals = "failed" }
data."exit.code" = { regex = "^[1-9]" }
"#,
        );
        let mut e = ev(Tier::Build, Level::Error, "Build FAILED");
        e.build_id = Some("b1".into());
        let mut d = serde_json::Map::new();
        d.insert("status".into(), "failed".into());
        d.insert("exit".into(), serde_json::json!({"code": 2}));
        e.data = Some(d);
        assert!(r.matcher.matches(&e));
        let mut no_id = e.clone();
        no_id.build_id = None;
        assert!(!r.matcher.matches(&no_id));
        let mut sys = e.clone();
        sys.tier = Tier::System;
        assert!(!r.matcher.matches(&sys));
        let mut ok = e.clone();
        ok.msg = "build ok".into();
        assert!(!r.matcher.matches(&ok));
    }

    #[test]
    fn threshold_fires_at_nth_within_window() {
        let r = rule("name=\"t\"\ntype=\"threshold\"\ncount=3\nwindow=\"10s\"\nchannels=[\"w\"]\n");
        let mut w = Window::new(&r, 0);
        let e = ev(Tier::System, Level::Error, "x");
        assert_eq!(w.observe(&r, &e, 0), Outcome::Counted);
        assert_eq!(w.observe(&r, &e, 5_000), Outcome::Counted);
        assert_eq!(w.observe(&r, &e, 10_000), Outcome::Counted); // first fell out
        assert_eq!(w.observe(&r, &e, 11_000), Outcome::Fires);
    }

    #[test]
    fn ratio_needs_min_base() {
        let r = rule(
            "name=\"r\"\ntype=\"ratio\"\nratio=0.5\nmin_base=4\nwindow=\"1m\"\nchannels=[\"w\"]\n[match]\nmsg=\"failed\"\n[base]\nmsg=\"build (ok|failed)\"\n",
        );
        let mut w = Window::new(&r, 0);
        let fail = ev(Tier::Build, Level::Error, "build failed");
        let ok = ev(Tier::Build, Level::Info, "build ok");
        assert_eq!(w.observe(&r, &fail, 0), Outcome::Counted);
        assert_eq!(w.observe(&r, &ok, 1), Outcome::Counted);
        assert_eq!(w.observe(&r, &ok, 2), Outcome::Counted);
        assert_eq!(w.observe(&r, &fail, 3), Outcome::Fires); // 2 of 4
        assert_eq!(w.observe(&r, &ok, 120_000), Outcome::Counted); // old ones gone
    }
}
