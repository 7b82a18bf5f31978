//! `[redaction]`: what a user can add to or take away from the built-in
//! rules.
//!
//! User-written strings (pattern regexes, allowlist regexes, key names) are
//! kept as `toml::Spanned` so that a typo in a regex is reported at the exact
//! `file:line:col` of the string, not as "somewhere in [redaction]".
//! Validation is construction: [`RedactionConfig::validate`] builds the
//! engine ([`super::Redactor::check`]) and places each of its errors at the
//! value it names, so what `check` accepts is exactly what runs.

use serde::Deserialize;
use toml::Spanned;

use super::{KeyError, RedactError};
use crate::config::{ConfigError, SourceText};

/// `[redaction]` (equality ignores positions: two loads of the same values
/// are equal wherever they were written)
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Kill switch. Off means secrets reach disk and the bucket.
    pub enabled: bool,
    /// Extra detectors, `[[redaction.patterns]]` with `name` and `regex`.
    /// They have no keyword prefilter and run on every message, so a regex
    /// that starts with a literal (`EMP-[0-9]{6}`) keeps the agent fast.
    pub patterns: Vec<PatternConfig>,
    /// Values that are never redacted, compared literally with the secret.
    pub allow: Vec<Spanned<String>>,
    /// Values that are never redacted: a regex searched in the secret (anchor
    /// it with `^...$` to require a full match).
    pub allow_regex: Vec<Spanned<String>>,
    /// Extra sensitive key names (matched like the built-in ones: case- and
    /// separator-insensitive, also as a suffix such as `db_<name>`).
    pub keys: Vec<Spanned<String>>,
    /// What replaces a secret: `mask` (`[REDACTED:rule]`) or `hash`
    /// (`[REDACTED:rule:tag]`, a keyed HMAC of the secret). Default: mask.
    pub mode: Option<Spanned<RedactMode>>,
    /// The HMAC key for `mode = "hash"`, normally `"${LOGSHIP_REDACT_KEY}"`.
    pub hash_key: Option<HashKey>,
    /// Or: the name of the environment variable that holds the key.
    pub hash_key_env: Option<Spanned<String>>,
    /// Hex characters of the tag, 4..=32. Default: 6 (24 bits).
    pub hash_length: Option<Spanned<usize>>,
    /// Personal data to redact as well (opt-in): email, card, ipv4, ipv6,
    /// phone.
    pub pii: Vec<Spanned<PiiKind>>,
    /// `redact` (`[REDACTED:email]`) or `partial` (`j***@example.com`).
    pub email: EmailStyle,
}

/// `redaction.mode`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedactMode {
    #[default]
    Mask,
    Hash,
}

/// One `redaction.pii` entry.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum PiiKind {
    Email,
    Card,
    Ipv4,
    Ipv6,
    Phone,
}

/// `redaction.email`: how an e-mail address is replaced.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmailStyle {
    /// The whole address becomes a marker.
    #[default]
    Redact,
    /// The first character of the local part and the domain stay.
    Partial,
}

/// The HMAC key as written in the config: never printed (`Debug` shows
/// only whether it is set).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct HashKey(pub Spanned<String>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(******)")
    }
}

/// Default tag length in hex characters.
pub const DEFAULT_HASH_LENGTH: usize = 6;
/// Shortest key accepted for `mode = "hash"`, in bytes.
pub const MIN_HASH_KEY: usize = 16;

/// One user-defined detector.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// Rule name: the `rule` label and the `[REDACTED:<name>]` marker.
    pub name: Spanned<String>,
    /// Regex; when it has a capture group named `secret` (or else a first
    /// group), only that group is replaced, otherwise the whole match.
    pub regex: Spanned<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            patterns: Vec::new(),
            allow: Vec::new(),
            allow_regex: Vec::new(),
            keys: Vec::new(),
            mode: None,
            hash_key: None,
            hash_key_env: None,
            hash_length: None,
            pii: Vec::new(),
            email: EmailStyle::Redact,
        }
    }
}

impl RedactionConfig {
    pub fn mode(&self) -> RedactMode {
        self.mode
            .as_ref()
            .map_or(RedactMode::Mask, |m| *m.get_ref())
    }

    /// `check`'s one-line description (never the key itself).
    pub fn summary(&self) -> String {
        if !self.enabled {
            return "DISABLED".into();
        }
        let mut s = String::from("enabled");
        if self.mode() == RedactMode::Hash {
            let from = match (&self.hash_key_env, &self.hash_key) {
                (Some(v), _) => format!("env {}", v.get_ref()),
                (None, Some(_)) => "hash_key".into(),
                (None, None) => "(not set)".into(),
            };
            let len = self
                .hash_length
                .as_ref()
                .map_or(DEFAULT_HASH_LENGTH, |l| *l.get_ref());
            s.push_str(&format!(" mode=hash tag={len} hex key=****** ({from})"));
        }
        if !self.pii.is_empty() {
            let kinds: Vec<String> = self
                .pii
                .iter()
                .map(|k| format!("{:?}", k.get_ref()).to_lowercase())
                .collect();
            s.push_str(&format!(" pii={}", kinds.join(",")));
            if self.email == EmailStyle::Partial {
                s.push_str(" email=partial");
            }
        }
        s
    }
}

/// A rule name must be usable as a metric label and inside the marker.
pub(crate) fn valid_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The regex crate's errors span several lines with a caret diagram; a
/// config error must stay on one line.
pub(crate) fn one_line(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .filter(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .next()
            .unwrap_or_else(|| s.replace('\n', " ")),
        other => other.to_string().replace('\n', " "),
    }
}

impl RedactionConfig {
    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let Err(errors) = super::Redactor::check(self) else {
            return Vec::new();
        };
        errors
            .0
            .into_iter()
            .map(|e| {
                let span = match &e {
                    RedactError::PatternName { index, .. }
                    | RedactError::DuplicateName { index, .. } => {
                        self.patterns.get(*index).map(|p| p.name.span())
                    }
                    RedactError::PatternRegex { index, .. } => {
                        self.patterns.get(*index).map(|p| p.regex.span())
                    }
                    RedactError::AllowRegex { index, .. } => {
                        self.allow_regex.get(*index).map(|r| r.span())
                    }
                    RedactError::Key(KeyError::Empty { index, .. }) => {
                        self.keys.get(*index).map(|k| k.span())
                    }
                    RedactError::HashKeyMissing => self.mode.as_ref().map(|m| m.span()),
                    RedactError::HashKeyEnv { .. } => self.hash_key_env.as_ref().map(|v| v.span()),
                    RedactError::HashKeyShort { .. } => self
                        .hash_key_env
                        .as_ref()
                        .map(|v| v.span())
                        .or_else(|| self.hash_key.as_ref().map(|k| k.0.span())),
                    RedactError::HashLength { .. } => self.hash_length.as_ref().map(|l| l.span()),
                    RedactError::Key(KeyError::Internal(_)) | RedactError::Internal(_) => None,
                };
                src.error_at_parsed(span, e.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    #[test]
    fn redact_config_bad_regex_has_position() {
        let text = "[redaction]\npatterns = [\n  { name = \"ok\", regex = \"a+\" },\n  { name = \"bad\", regex = \"(unclosed\" },\n]\n";
        let e = load_str(Path::new("agent.toml"), text.into(), &|_| None).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!((e.0[0].line, e.0[0].col), (4, 27), "{e}");
        assert!(e.0[0].message.contains("\"bad\""), "{e}");
        assert!(!e.0[0].message.contains('\n'), "{e}");
    }

    #[test]
    fn redact_config_bad_allow_regex_and_name() {
        let text = "[redaction]\nallow_regex = [\"[\"]\n[[redaction.patterns]]\nname = \"Bad Name\"\nregex = \"x\"\n";
        let e = load_str(Path::new("agent.toml"), text.into(), &|_| None).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        let mut lines: Vec<usize> = e.0.iter().map(|e| e.line).collect();
        lines.sort();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn redact_config_errors_come_from_the_engine_with_positions() {
        // Duplicate names and empty keys: once checked only here, now by
        // the engine's constructor, which `check` calls.
        let text = "[redaction]\nkeys = [\"pin\", \"--\"]\n[[redaction.patterns]]\nname = \"a\"\nregex = \"x\"\n[[redaction.patterns]]\nname = \"a\"\nregex = \"y\"\n";
        let e = load_str(Path::new("agent.toml"), text.into(), &|_| None).unwrap_err();
        let found: Vec<(usize, usize)> = e.0.iter().map(|e| (e.line, e.col)).collect();
        assert_eq!(found, vec![(2, 16), (7, 8)], "{e}");
        assert!(e.0[0].message.contains("\"--\" has no letters"), "{e}");
        assert!(e.0[1].message.contains("duplicate"), "{e}");
        let mut cfg = super::RedactionConfig::default();
        cfg.keys.push(toml::Spanned::new(0..0, "--".into()));
        assert!(crate::redact::Redactor::new(&cfg).is_err());
    }

    #[test]
    fn redact_config_full_example_loads() {
        let text = "[redaction]\nenabled = true\nallow = [\"AKIAIOSFODNN7EXAMPLE\"]\nallow_regex = [\"^test_\"]\nkeys = [\"pin\"]\n[[redaction.patterns]]\nname = \"employee_id\"\nregex = \"EMP-(?P<secret>[0-9]{6})\"\n";
        let l = load_str(Path::new("agent.toml"), text.into(), &|_| None).unwrap();
        assert_eq!(l.config.redaction.patterns.len(), 1);
        assert!(crate::redact::Redactor::new(&l.config.redaction).is_ok());
    }
}
