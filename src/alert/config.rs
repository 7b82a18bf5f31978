//! `[alerts]` as written in `agent.toml`: serde types and semantic checks.
//!
//! Parsing rejects unknown keys (with a suggestion) and bad enum values at
//! their position. Everything that needs more than a type to check — a rule
//! naming a channel that does not exist, a regex that does not compile, a
//! window of zero, a ratio outside (0, 1] — is checked by
//! [`AlertsConfig::validate`], which points at the offending value because
//! those fields are `toml::Spanned`. A rule is validated by compiling it
//! ([`Rule::compile`](super::rules::Rule::compile) returns every problem with
//! its span); only what needs the other tables (channel names, unique rule
//! names) is checked here.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, value::SeqAccessDeserializer, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, HumanDuration, SourceText};
use crate::event::{Level, Tier};

/// `[alerts]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Shared suppression state for the fleet; without it, per process.
    pub redis_url: Option<String>,
    /// For `rediss://`: PEM file of the CA that signed the server's
    /// certificate (a private CA); default: the system's roots.
    pub redis_ca_file: Option<String>,
    /// Prefix of the suppression keys in Redis.
    pub redis_prefix: Option<String>,
    /// Events waiting for evaluation; when full, events are skipped (counted
    /// as `events_dropped_total{reason="alert_queue_full"}`). Default 10000.
    pub queue_capacity: Option<usize>,
    /// Named channels (`[alerts.channels.NAME]`).
    pub channels: BTreeMap<Spanned<String>, ChannelConfig>,
    /// `[[alerts.rules]]`
    pub rules: Vec<RuleConfig>,
}

/// How bad a rule's notification is; `escalate_after` moves one step up.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step higher; `critical` stays `critical`.
    pub fn escalated(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// `type` of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    /// Every match notifies (subject to suppression).
    #[default]
    Any,
    /// `count` matches within `window`.
    Threshold,
    /// matches / base matches within `window` reaches `ratio`.
    Ratio,
    /// No match for `window`.
    Absence,
}

/// One `[[alerts.rules]]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: Spanned<String>,
    #[serde(default, rename = "type")]
    pub rule_type: RuleType,
    #[serde(default)]
    pub severity: Severity,
    pub channels: Spanned<Vec<Spanned<String>>>,
    /// One fingerprint notifies at most once per this long (fleet-wide).
    /// Default 10m.
    #[serde(default)]
    pub suppress_for: Option<Spanned<HumanDuration>>,
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    /// `ratio`: the denominator's match.
    #[serde(default)]
    pub base: Option<Spanned<MatchConfig>>,
    /// `threshold`: matches needed within `window`.
    #[serde(default)]
    pub count: Option<Spanned<u64>>,
    /// `threshold`, `ratio`, `absence`: the sliding window.
    #[serde(default)]
    pub window: Option<Spanned<HumanDuration>>,
    /// `ratio`: fire when matches / base >= this, in (0, 1].
    #[serde(default)]
    pub ratio: Option<Spanned<f64>>,
    /// `ratio`: base matches needed in the window before the ratio counts.
    /// Default 1.
    #[serde(default)]
    pub min_base: Option<u64>,
    /// Still firing this long after the first notification: notify again,
    /// one severity higher.
    #[serde(default)]
    pub escalate_after: Option<Spanned<HumanDuration>>,
    /// Kill switch for one rule.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `[alerts.rules.match]` / `[alerts.rules.base]`: all given conditions must hold.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub tier: Option<OneOrMany<Tier>>,
    pub kind: Option<OneOrMany<String>>,
    pub lvl: Option<OneOrMany<Level>>,
    pub src: Option<OneOrMany<String>>,
    #[serde(alias = "projectId")]
    pub project_id: Option<FieldCond>,
    #[serde(alias = "buildId")]
    pub build_id: Option<FieldCond>,
    #[serde(alias = "userId")]
    pub user_id: Option<FieldCond>,
    #[serde(alias = "reqId")]
    pub req_id: Option<FieldCond>,
    /// Regex searched in `msg`.
    pub msg: Option<Spanned<String>>,
    /// Conditions on `data` fields; a dotted name walks nested objects.
    pub data: BTreeMap<String, FieldCond>,
}

/// A condition on one field: any combination of `equals`, `regex`, `exists`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldCond {
    /// Equal to this value (strings compare to strings, numbers to numbers).
    pub equals: Option<toml::Value>,
    /// The field, as a string (numbers and booleans formatted), matches.
    pub regex: Option<Spanned<String>>,
    /// `true`: the field is present and not null; `false`: absent or null.
    pub exists: Option<bool>,
}

/// A value or a list of values (`tier = "build"` or `tier = ["build", "deploy"]`).
#[derive(Clone, Debug, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                let one = T::deserialize(de::value::StrDeserializer::<E>::new(s))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The channel types (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Webhook,
    Slack,
    Discord,
    PagerDuty,
    Email,
    Sms,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::PagerDuty,
        ChannelKind::Email,
        ChannelKind::Sms,
    ];

    /// The name written as `type = "..."`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::PagerDuty => "pagerduty",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// All names, for messages: `webhook, slack, ...`.
    fn names() -> String {
        ChannelKind::ALL.map(ChannelKind::as_str).join(", ")
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a channel table has no usable type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelTypeError {
    #[error("channel \"{0}\" has no type; add `type = ` one of {names}", names = ChannelKind::names())]
    Missing(String),
    #[error("unknown channel type \"{0}\"")]
    Unknown(String),
}

/// SMTP transport security.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required). Default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS). Default port 465.
    Tls,
    /// No encryption — for a local relay only. Default port 25.
    None,
}

/// One `[alerts.channels.NAME]` table. The union of every type's keys, so
/// unknown keys are rejected while parsing; which keys a type accepts and
/// requires is checked in [`AlertsConfig::validate`]. `Debug` masks every
/// credential (URLs of chat webhooks included).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// `webhook`, `slack`, `discord`, `pagerduty`, `email` or `sms`;
    /// default: the table name when it is one of those.
    #[serde(default, rename = "type")]
    pub channel_type: Option<Spanned<String>>,
    /// Kill switch: a disabled channel is accepted and skipped.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// webhook / slack / discord: where to POST (for Slack and Discord the
    /// URL is the secret).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// webhook: HMAC-SHA256 key; the signature goes in `signature_header`.
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// webhook: default `X-Logship-Signature` (value `sha256=<hex>`).
    #[serde(default)]
    pub signature_header: Option<Spanned<String>>,
    /// pagerduty: the integration's routing key.
    #[serde(default)]
    pub routing_key: Option<Spanned<String>>,
    /// pagerduty (default `https://events.pagerduty.com`) and sms (default
    /// `https://api.twilio.com`): base URL, for tests and proxies.
    #[serde(default)]
    pub api_url: Option<Spanned<String>>,
    /// email: SMTP server.
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    /// email: default from `tls` (587 / 465 / 25).
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// email: `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: Option<Spanned<SmtpTls>>,
    /// email: PEM file of an extra CA to trust (a private relay's CA).
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// email: SMTP AUTH user and password (both or neither).
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub password: Option<Spanned<String>>,
    /// email: sender address; sms: sending phone number.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// email: recipient addresses; sms: recipient phone numbers.
    #[serde(default)]
    pub to: Option<Spanned<Vec<String>>>,
    /// sms: Twilio account SID and auth token.
    #[serde(default)]
    pub account_sid: Option<Spanned<String>>,
    #[serde(default)]
    pub auth_token: Option<Spanned<String>>,
    /// Deliveries per second at most (default 50); excess waits in line.
    #[serde(default)]
    pub rate_limit: Option<Spanned<f64>>,
    /// Attempts per notification before it counts as failed (default 5).
    #[serde(default)]
    pub max_attempts: Option<Spanned<u32>>,
    /// First retry delay, doubled per attempt with jitter (default 500ms).
    #[serde(default)]
    pub retry_initial: Option<Spanned<HumanDuration>>,
    /// Longest retry delay (default 30s).
    #[serde(default)]
    pub retry_max: Option<Spanned<HumanDuration>>,
    /// One attempt's time limit (default 10s).
    #[serde(default)]
    pub timeout: Option<Spanned<HumanDuration>>,
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |v: &Option<Spanned<String>>| v.as_ref().map(|_| "***");
        let plain = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        f.debug_struct("ChannelConfig")
            .field("type", &plain(&self.channel_type))
            .field("enabled", &self.enabled)
            .field("url", &masked(&self.url))
            .field("secret", &masked(&self.secret))
            .field("routing_key", &masked(&self.routing_key))
            .field("api_url", &plain(&self.api_url))
            .field("host", &plain(&self.host))
            .field("username", &plain(&self.username))
            .field("password", &masked(&self.password))
            .field("from", &plain(&self.from))
            .field("to", &self.to.as_ref().map(|t| t.get_ref().clone()))
            .field("account_sid", &plain(&self.account_sid))
            .field("auth_token", &masked(&self.auth_token))
            .finish_non_exhaustive()
    }
}

impl ChannelConfig {
    /// The effective type: `type`, else the table name if it is a type.
    pub fn kind(&self, name: &str) -> Result<ChannelKind, ChannelTypeError> {
        match &self.channel_type {
            Some(t) => ChannelKind::parse(t.get_ref())
                .ok_or_else(|| ChannelTypeError::Unknown(t.get_ref().clone())),
            None => ChannelKind::parse(name).ok_or_else(|| ChannelTypeError::Missing(name.into())),
        }
    }

    /// `(key, present, span)` for every type-specific key, to check which
    /// are allowed for the effective type.
    fn specific_keys(&self) -> Vec<(&'static str, Option<std::ops::Range<usize>>)> {
        fn sp<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
            v.as_ref().map(|s| s.span())
        }
        vec![
            ("url", sp(&self.url)),
            ("secret", sp(&self.secret)),
            ("signature_header", sp(&self.signature_header)),
            ("routing_key", sp(&self.routing_key)),
            ("api_url", sp(&self.api_url)),
            ("host", sp(&self.host)),
            ("port", sp(&self.port)),
            ("tls", sp(&self.tls)),
            ("ca_file", sp(&self.ca_file)),
            ("username", sp(&self.username)),
            ("password", sp(&self.password)),
            ("from", sp(&self.from)),
            ("to", sp(&self.to)),
            ("account_sid", sp(&self.account_sid)),
            ("auth_token", sp(&self.auth_token)),
        ]
    }
}

/// Keys each channel type accepts and requires (beyond the common ones).
fn keys_of(kind: ChannelKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ChannelKind::Webhook => (&["url", "secret", "signature_header"], &["url"]),
        ChannelKind::Slack | ChannelKind::Discord => (&["url"], &["url"]),
        ChannelKind::PagerDuty => (&["routing_key", "api_url"], &["routing_key"]),
        ChannelKind::Email => (
            &[
                "host", "port", "tls", "ca_file", "username", "password", "from", "to",
            ],
            &["host", "from", "to"],
        ),
        ChannelKind::Sms => (
            &["api_url", "account_sid", "auth_token", "from", "to"],
            &["account_sid", "auth_token", "from", "to"],
        ),
    }
}

impl AlertsConfig {
    /// The Redis that suppression shares, if configured.
    pub fn redis_target(&self) -> Option<crate::ops::redis::RedisTarget> {
        self.redis_url
            .as_ref()
            .map(|url| crate::ops::redis::RedisTarget {
                url: url.clone(),
                ca_file: self.redis_ca_file.clone(),
            })
    }
}

impl AlertsConfig {
    /// Semantic checks, each error at the value it is about.
    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        // Channels are also built, as the engine builds them: what a
        // constructor rejects (a ca_file that is not PEM certificates, say)
        // fails `check` rather than the start of the agent. No connection
        // is made; one HTTP client serves every channel, as at run time.
        let http = (!self.channels.is_empty()).then(reqwest::Client::new);
        for (name, ch) in &self.channels {
            let before = errors.len();
            validate_channel(src, name, ch, &mut errors);
            if let (true, Some(http)) = (errors.len() == before, &http) {
                if let Err(e) = super::channels::Channel::compile(name.get_ref(), ch, http) {
                    let span = ch.ca_file.as_ref().map_or(name.span(), |c| c.span());
                    errors.push(src.error_at_parsed(
                        Some(span),
                        format!("channel \"{}\": {e:#}", name.get_ref()),
                    ));
                }
            }
        }
        let channel_names: Vec<&str> = self.channels.keys().map(|k| k.get_ref().as_str()).collect();
        let mut rule_names = HashSet::new();
        for r in &self.rules {
            validate_rule(src, r, &channel_names, &mut rule_names, &mut errors);
        }
        if let Some(target) = self.redis_target() {
            if let Err(e) = target.client() {
                errors.push(src.error_at(None, format!("alerts.redis_url: {e}")));
            }
        } else if self.redis_ca_file.is_some() {
            errors.push(src.error_at(
                None,
                "alerts.redis_ca_file is set without alerts.redis_url; it would not be used",
            ));
        }
        if self.queue_capacity == Some(0) {
            errors.push(src.error_at(None, "alerts.queue_capacity must be at least 1"));
        }
        errors
    }
}

fn validate_channel(
    src: &SourceText,
    name: &Spanned<String>,
    ch: &ChannelConfig,
    errors: &mut Vec<ConfigError>,
) {
    let at = |span, msg: String| src.error_at_parsed(Some(span), msg);
    let n = name.get_ref();
    let kind = match ch.kind(n) {
        Ok(kind) => kind,
        Err(e @ ChannelTypeError::Missing(_)) => {
            errors.push(at(name.span(), e.to_string()));
            return;
        }
        Err(ChannelTypeError::Unknown(kind)) => {
            let span = ch.channel_type.as_ref().map_or(name.span(), |t| t.span());
            errors.push(at(
                span,
                crate::config::error::with_suggestion(&format!(
                    "unknown variant `{kind}`, expected one of {}",
                    ChannelKind::ALL.map(|t| format!("`{t}`")).join(", ")
                )),
            ));
            return;
        }
    };
    let (allowed, required) = keys_of(kind);
    for (key, span) in ch.specific_keys() {
        if let Some(span) = span {
            if !allowed.contains(&key) {
                errors.push(at(
                    span,
                    format!(
                        "key \"{key}\" does not apply to a {kind} channel (valid: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        } else if required.contains(&key) {
            errors.push(at(
                name.span(),
                format!("{kind} channel \"{n}\" needs `{key}`"),
            ));
        }
    }
    for (key, url) in [("url", &ch.url), ("api_url", &ch.api_url)] {
        if let Some(u) = url {
            let ok = reqwest::Url::parse(u.get_ref())
                .map(|p| matches!(p.scheme(), "http" | "https"))
                .unwrap_or(false);
            if !ok {
                errors.push(at(
                    u.span(),
                    format!(
                        "{key} is not an http(s) URL; write e.g. \"https://hooks.example.com/x\""
                    ),
                ));
            }
        }
    }
    if let Some(to) = &ch.to {
        if to.get_ref().is_empty() {
            errors.push(at(
                to.span(),
                "to is empty; give at least one recipient".into(),
            ));
        }
        if kind == ChannelKind::Email {
            for addr in to.get_ref() {
                if addr.parse::<lettre::message::Mailbox>().is_err() {
                    errors.push(at(to.span(), format!("{addr:?} is not an email address")));
                }
            }
        }
    }
    if kind == ChannelKind::Sms {
        let e164 = |n: &str| {
            n.strip_prefix('+').is_some_and(|d| {
                (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
            })
        };
        for n in ch.to.iter().flat_map(|t| t.get_ref()) {
            if !e164(n) {
                errors.push(at(
                    ch.to.as_ref().map_or(name.span(), |t| t.span()),
                    format!("{n:?} is not a phone number in E.164 form, e.g. \"+15551234567\""),
                ));
            }
        }
    }
    if let Some(ca) = &ch.ca_file {
        if let Err(e) = std::fs::read(ca.get_ref()) {
            errors.push(at(
                ca.span(),
                format!("cannot read ca_file {:?}: {e}", ca.get_ref()),
            ));
        }
    }
    if let (Some(from), ChannelKind::Email) = (&ch.from, kind) {
        if from.get_ref().parse::<lettre::message::Mailbox>().is_err() {
            errors.push(at(
                from.span(),
                format!("{:?} is not an email address", from.get_ref()),
            ));
        }
    }
    if kind == ChannelKind::Email && ch.username.is_some() != ch.password.is_some() {
        errors.push(at(
            name.span(),
            format!("email channel \"{n}\": give both username and password, or neither"),
        ));
    }
    if let Some(r) = &ch.rate_limit {
        if !(r.get_ref().is_finite() && *r.get_ref() > 0.0) {
            errors.push(at(
                r.span(),
                "rate_limit must be > 0 (deliveries per second)".into(),
            ));
        }
    }
    if let Some(a) = &ch.max_attempts {
        if *a.get_ref() == 0 {
            errors.push(at(a.span(), "max_attempts must be at least 1".into()));
        }
    }
    for (key, d) in [
        ("retry_initial", &ch.retry_initial),
        ("retry_max", &ch.retry_max),
        ("timeout", &ch.timeout),
    ] {
        if let Some(d) = d {
            if d.get_ref().get().is_zero() {
                errors.push(at(d.span(), format!("{key} must be > 0")));
            }
        }
    }
}

fn validate_rule(
    src: &SourceText,
    r: &RuleConfig,
    channel_names: &[&str],
    rule_names: &mut HashSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    let at = |span, msg: String| src.error_at_parsed(Some(span), msg);
    let name = r.name.get_ref();
    if !rule_names.insert(name.clone()) {
        errors.push(at(
            r.name.span(),
            format!("duplicate rule name {name:?}; names must be unique"),
        ));
    }
    for c in r.channels.get_ref() {
        if !channel_names.contains(&c.get_ref().as_str()) {
            let hint = channel_names
                .iter()
                .map(|n| (strsim::jaro_winkler(c.get_ref(), n), *n))
                .filter(|(s, _)| *s > 0.75)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, n)| format!("; did you mean \"{n}\"?"))
                .unwrap_or_default();
            errors.push(at(
                c.span(),
                format!(
                    "unknown channel \"{}\"{hint} (defined: {})",
                    c.get_ref(),
                    if channel_names.is_empty() {
                        "none".to_string()
                    } else {
                        channel_names.join(", ")
                    }
                ),
            ));
        }
    }
    if let Err(e) = super::rules::Rule::compile(r) {
        errors.extend(
            e.0.into_iter()
                .map(|e| src.error_at_parsed(Some(e.span.clone()), e.to_string())),
        );
    }
}
