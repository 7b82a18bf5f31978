//! Key-aware redaction: the value of a sensitive *key* is secret whatever it
//! looks like (`password=hunter2` has no format to detect).
//!
//! The engine's keyword automaton reports where a sensitive stem occurs; the
//! key is the identifier around it, and it counts only when a separator
//! follows (`db_password=`, `"apiKey": `, `X-Api-Key: `, `\"token\":\"`).
//! No regex is involved: the rules are about word boundaries and context,
//! which code states more plainly (and runs faster) than a regex:
//!
//! - names are compared case- and separator-insensitively, as suffixes
//!   (`db_password`, `dbPassword`, `DB-PASSWORD`); short stems (`pass`,
//!   `pwd`, `auth`) need a word boundary so `bypass` and `oauth` stay;
//! - `key`, `sig` and `signature` alone are sensitive only as URL query
//!   parameters (`?key=`, `&X-Amz-Signature=`) and `*_KEY` only in
//!   environment style (`STRIPE_KEY=`), because "key" is everywhere in logs;
//! - booleans, nulls, small numbers, masks (`****`), `${VAR}` references and
//!   nested objects are not secrets and stay (`token_count=5` never matches
//!   at all: the key must *end* in the stem).
//!
//! Values are parsed by their quoting (`"..."`, `\"...\"` inside an escaped
//! JSON string, `'...'`, or a bare token); an `Authorization` value keeps its
//! scheme (`Bearer [REDACTED:bearer]`), a `Cookie:` header value is redacted
//! to the end of the line. URL userinfo passwords are found here too.

use super::engine::{push_span, Labels, RuleId, Span, PRIO_KEY};

/// How a sensitive key's value is parsed and filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Passwords: even short digit strings are secret.
    Password,
    /// `PWD` is also the shell's working directory: paths stay.
    Pwd,
    /// `Authorization`-style: a scheme word is kept.
    Authorization,
    /// Cookie headers: `; `-separated, redacted to the end of the line.
    Cookie,
    /// A key merely named `key` (`"key":`, `signing_key:`, `hmacKey=`):
    /// the value counts only when it looks like key material (see
    /// [`key_material`]), since cache and object keys are everywhere.
    KeyMaterial,
    /// Everything else.
    Plain,
}

/// Where a key was seen; some keys are sensitive only in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// After `?` or `&`: a URL query parameter.
    Query,
    /// Anywhere else (text, JSON object keys).
    Other,
}

/// The verdict on a key.
#[derive(Clone, Copy, Debug)]
pub struct KeyRule {
    pub rule: RuleId,
    pub family: Family,
}

struct Stem {
    norm: String,
    rule: RuleId,
    family: Family,
    /// Needs a separator or camelCase boundary before it when it is a suffix.
    needs_boundary: bool,
    query_only: bool,
}

/// Built-in sensitive stems: (normalized suffix, rule, family, query only).
const STEMS: &[(&str, &str, Family, bool)] = &[
    ("password", "password", Family::Password, false),
    ("passwd", "password", Family::Password, false),
    ("passphrase", "password", Family::Password, false),
    ("pass", "password", Family::Password, false),
    ("storepass", "password", Family::Password, false),
    ("keypass", "password", Family::Password, false),
    ("pwd", "password", Family::Pwd, false),
    ("secret", "secret", Family::Plain, false),
    ("token", "token", Family::Plain, false),
    ("apikey", "api_key", Family::Plain, false),
    ("accesskey", "access_key", Family::Plain, false),
    ("secretkey", "secret_key", Family::Plain, false),
    ("privatekey", "private_key", Family::Plain, false),
    ("signingkey", "secret_key", Family::Plain, false),
    ("encryptionkey", "secret_key", Family::Plain, false),
    ("masterkey", "secret_key", Family::Plain, false),
    ("accountkey", "secret_key", Family::Plain, false),
    (
        "authorization",
        "authorization",
        Family::Authorization,
        false,
    ),
    ("auth", "authorization", Family::Authorization, false),
    ("cookie", "cookie", Family::Cookie, false),
    ("session", "session", Family::Plain, false),
    ("sessionid", "session", Family::Plain, false),
    ("sessid", "session", Family::Plain, false),
    ("sessionkey", "session", Family::Plain, false),
    ("credentials", "credentials", Family::Plain, false),
    ("credential", "credentials", Family::Plain, false),
    (
        "connectionstring",
        "connection_string",
        Family::Plain,
        false,
    ),
    ("key", "url_param", Family::Plain, true),
    ("sig", "url_param", Family::Plain, true),
    ("signature", "url_param", Family::Plain, true),
];

/// Authorization schemes kept in front of the redacted value.
const SCHEMES: &[(&str, &str)] = &[
    ("bearer", "bearer"),
    ("basic", "basic_auth"),
    ("token", "authorization"),
    ("bot", "authorization"),
    ("digest", "authorization"),
    ("negotiate", "authorization"),
    ("ntlm", "authorization"),
    ("apikey", "authorization"),
    ("dpop", "authorization"),
    ("sso-key", "authorization"),
    ("aws4-hmac-sha256", "authorization"),
];

/// Finds sensitive keys and URL passwords in text; classifies JSON keys.
pub struct KeyMatcher {
    stems: Vec<Stem>,
    /// Indices into `stems` by the stem's last byte (a lower-case ASCII
    /// letter or digit), in `stems`' order: a key can only end in a stem
    /// whose last byte is its own last letter or digit, so `classify` tries
    /// those alone (three on average instead of thirty). A stem that ends
    /// in any other byte can never match and is in no list.
    by_last: Vec<Vec<usize>>,
    env_key: RuleId,
    key_material: RuleId,
    url_rule: RuleId,
    schemes: Vec<(&'static str, RuleId)>,
}

/// Lowercase alphanumerics of a key name (`X-Api-Key` -> `xapikey`).
pub fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Why [`KeyMatcher::new`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    /// `redaction.keys[index]` normalizes to nothing.
    #[error(
        "redaction.keys entry {key:?} has no letters or digits; give a key name such as \"pin\""
    )]
    Empty { index: usize, key: String },
    /// The built-in URL-password regex does not build: a bug.
    #[error("internal: url password regex: {0}")]
    Internal(String),
}

impl KeyMatcher {
    pub fn new(extra: &[String], labels: &mut Labels) -> Result<KeyMatcher, KeyError> {
        let mut stems: Vec<Stem> = STEMS
            .iter()
            .map(|&(norm, rule, family, query_only)| Stem {
                norm: norm.to_string(),
                rule: labels.id(rule),
                family,
                needs_boundary: norm.len() < 5,
                query_only,
            })
            .collect();
        for (index, k) in extra.iter().enumerate() {
            let norm = normalize(k);
            if norm.is_empty() {
                return Err(KeyError::Empty {
                    index,
                    key: k.clone(),
                });
            }
            // A key the user named is secret whatever its value looks like,
            // digits included (PINs), as passwords are.
            let family = Family::Password;
            stems.push(Stem {
                rule: labels.id(&norm),
                norm,
                family,
                needs_boundary: true,
                query_only: false,
            });
        }
        // Longest first, so `sessionid` wins over `session` wins over `id`.
        stems.sort_by_key(|s| std::cmp::Reverse(s.norm.len()));
        let mut by_last = vec![Vec::new(); 128];
        for (i, stem) in stems.iter().enumerate() {
            match stem.norm.as_bytes().last() {
                Some(&c) if c.is_ascii_digit() || c.is_ascii_lowercase() => {
                    by_last[usize::from(c)].push(i)
                }
                _ => {}
            }
        }
        Ok(KeyMatcher {
            stems,
            by_last,
            env_key: labels.id("secret_key"),
            key_material: labels.id("generic_key"),
            url_rule: labels.id("url_password"),
            schemes: SCHEMES.iter().map(|&(s, r)| (s, labels.id(r))).collect(),
        })
    }

    /// Is `key` sensitive here, and how is its value read?
    ///
    /// Names are compared on their lowercased ASCII letters and digits, from
    /// the end, without building the normalized name (this runs at every
    /// key hit of every line).
    pub fn classify(&self, key: &str, ctx: Context) -> Option<KeyRule> {
        let raw = key.as_bytes();
        // Only the end of the name is read (a key can be a long token that
        // happens to contain a stem): its last letter or digit picks the
        // stems, and "more letters or digits before the suffix" is asked of
        // the bytes before it.
        let last = raw
            .iter()
            .rev()
            .find(|c| c.is_ascii_alphanumeric())
            .map_or(0, u8::to_ascii_lowercase);
        let alnum_before = |i: usize| raw[..i].iter().any(u8::is_ascii_alphanumeric);
        // `last` is 0 when there is no letter or digit: no list, no stem.
        for &i in &self.by_last[usize::from(last)] {
            let stem = &self.stems[i];
            // `None` also when the name has fewer letters and digits.
            let Some(first) = norm_suffix(raw, stem.norm.as_bytes()) else {
                continue;
            };
            if stem.query_only && ctx != Context::Query {
                continue;
            }
            if stem.needs_boundary && alnum_before(first) && !boundary(raw, first) {
                continue;
            }
            return Some(KeyRule {
                rule: stem.rule,
                family: stem.family,
            });
        }
        if is_env_key(key) {
            return Some(KeyRule {
                rule: self.env_key,
                family: Family::Plain,
            });
        }
        let named_key = last == b'y'
            && norm_suffix(raw, b"key").is_some_and(|k| !alnum_before(k) || boundary(raw, k))
            && norm_suffix(raw, b"publickey").is_none()
            && norm_suffix(raw, b"pubkey").is_none();
        if named_key {
            return Some(KeyRule {
                rule: self.key_material,
                family: Family::KeyMaterial,
            });
        }
        None
    }

    /// The value of the key around a stem the engine's automaton found at
    /// `text[s..e]`, if the key is sensitive and a value follows. Stems come
    /// in order of their end; `done_until` skips the other stems of a key
    /// already looked at (`db_password` holds `pass` and `password`).
    pub fn stem(
        &self,
        text: &str,
        (s, e): (usize, usize),
        done_until: &mut usize,
        spans: &mut Vec<Span>,
    ) {
        let bytes = text.as_bytes();
        if e <= *done_until {
            return;
        }
        let mut start = s;
        while start > 0 && is_key_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = e;
        while end < bytes.len() && is_key_byte(bytes[end]) {
            end += 1;
        }
        *done_until = end;
        if bytes[..start].ends_with(b"${") || bytes[..start].ends_with(b"$") {
            return; // the name in a `${DB_PASSWORD:-x}` reference
        }
        if start > 0 && bytes[start - 1] == b':' && in_arn(bytes, start) {
            return; // `arn:aws:secretsmanager:...:secret:name`
        }
        let Some((value_at, colon)) =
            separator(bytes, end).or_else(|| element_or_flag(bytes, start, end))
        else {
            return;
        };
        let ctx = match start.checked_sub(1).map(|i| bytes[i]) {
            Some(b'?' | b'&') => Context::Query,
            _ => Context::Other,
        };
        let Some(kr) = self.classify(&text[start..end], ctx) else {
            return;
        };
        if let Some(span) = self.value_span(text, value_at, kr, colon) {
            push_span(spans, span);
        }
    }

    /// The password of a URL's userinfo (`scheme://user:password@host`),
    /// for a `://` at `i`.
    pub fn url_password(&self, text: &str, i: usize, spans: &mut Vec<Span>) {
        let b = text.as_bytes();
        if i == 0 || !b[i - 1].is_ascii_alphanumeric() {
            return;
        }
        let from = i + 3;
        let stop = b[from..]
            .iter()
            .position(|&c| {
                c.is_ascii_whitespace()
                    || matches!(c, b'/' | b'?' | b'#' | b'@' | b'"' | b'\'' | b'<' | b'>')
            })
            .map(|k| from + k);
        let Some(at) = stop.filter(|&k| b[k] == b'@') else {
            return;
        };
        let Some(colon) = b[from..at]
            .iter()
            .position(|&c| c == b':')
            .map(|k| from + k)
        else {
            return;
        };
        if b[from..colon].iter().any(|&c| c == b'[' || c == b']') || colon + 1 >= at {
            return;
        }
        if !skip_value(&text[colon + 1..at], Family::Password) {
            push_span(spans, Span::new(colon + 1, at, self.url_rule, PRIO_KEY));
        }
    }

    /// The part of a JSON string value under a sensitive key to replace: all
    /// of it, except an `Authorization` scheme word.
    pub fn value_in_string(&self, s: &str, kr: KeyRule) -> (usize, usize, RuleId) {
        if kr.family == Family::Authorization {
            if let Some((start, _, rule)) = self.bare_value(s, 0, kr, true) {
                if start > 0 {
                    return (start, s.trim_end().len().max(start), rule);
                }
            }
        }
        (0, s.len(), kr.rule)
    }

    /// The value after a `key<sep>` match ending at `p`.
    fn value_span(&self, text: &str, p: usize, kr: KeyRule, colon: bool) -> Option<Span> {
        let line_end = memchr::memchr(b'\n', &text.as_bytes()[p..]).map_or(text.len(), |i| p + i);
        let rest = &text[p..line_end];
        let (start, end, rule) = if let Some(inner) = rest.strip_prefix("\\\"") {
            let len = inner.find("\\\"").unwrap_or(inner.len());
            (p + 2, p + 2 + len, kr.rule)
        } else if let Some(inner) = rest.strip_prefix('"') {
            (p + 1, p + 1 + quoted_len(inner, b'"'), kr.rule)
        } else if let Some(inner) = rest.strip_prefix('\'') {
            (p + 1, p + 1 + quoted_len(inner, b'\''), kr.rule)
        } else {
            if reference_len(rest).is_some() {
                return None;
            }
            let (start, end, rule) = self.bare_value(rest, p, kr, colon)?;
            if !plausible_bare(&text[start..end], kr.family) {
                return None;
            }
            (start, end, rule)
        };
        let value = &text[start..end];
        if skip_value(value, kr.family) {
            return None;
        }
        Some(Span::new(start, end, rule, PRIO_KEY))
    }

    /// An unquoted value: a token, or for headers the rest of the line.
    fn bare_value(
        &self,
        rest: &str,
        p: usize,
        kr: KeyRule,
        colon: bool,
    ) -> Option<(usize, usize, RuleId)> {
        let to_eol = |from: usize| {
            let r = &rest[from..];
            let cut = r.find(['"', '\'', '\\', '\r']).unwrap_or(r.len());
            from + r[..cut].trim_end().len()
        };
        match kr.family {
            Family::Authorization => {
                let word_len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .unwrap_or(rest.len());
                let after = &rest[word_len..];
                if word_len > 0 && after.starts_with([' ', '\t']) {
                    // Schemes are lower case: compared without building the
                    // lower-cased word.
                    let word = &rest[..word_len];
                    if let Some(&(word, rule)) = self
                        .schemes
                        .iter()
                        .find(|(s, _)| s.eq_ignore_ascii_case(word))
                    {
                        let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
                        let from = word_len + gap;
                        if reference_len(&rest[from..]).is_some() {
                            return None;
                        }
                        let end = if word == "digest" || word.starts_with("aws4") {
                            to_eol(from)
                        } else {
                            from + token_len(&rest[from..])
                        };
                        return Some((p + from, p + end, rule));
                    }
                }
                Some((p, p + token_len(rest), kr.rule))
            }
            Family::Cookie if colon => Some((p, p + to_eol(0), kr.rule)),
            _ => Some((p, p + token_len(rest), kr.rule)),
        }
    }
}

pub(crate) fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// After a key ending at `i`: an optional closing quote (`"`, `'`, `\"`),
/// then `=`, `:` or `=>` with optional blanks around it. Returns where the
/// value starts and whether the separator was a colon. `::` (a path in
/// `Session::new`) and `://` (a URL scheme) are not separators.
pub(crate) fn separator(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i;
    if b[j..].starts_with(b"\\\"") {
        j += 2;
    } else if matches!(b.get(j), Some(b'"' | b'\'')) {
        j += 1;
    }
    while matches!(b.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    let colon = match b.get(j) {
        Some(b'=') if b.get(j + 1) == Some(&b'>') => {
            j += 2;
            false
        }
        Some(b'=') => {
            j += 1;
            false
        }
        Some(b':') if matches!(b.get(j + 1), Some(b':' | b'/')) => return None,
        Some(b':') => {
            j += 1;
            true
        }
        _ => return None,
    };
    while matches!(b.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    Some((j, colon))
}

/// Two more ways a key introduces its value: an XML element
/// (`<password>v</password>`; the bare value stops at `<`) and a
/// command-line flag followed by a space (`--password v`).
fn element_or_flag(b: &[u8], start: usize, end: usize) -> Option<(usize, bool)> {
    let after = b.get(end).copied();
    if start > 0 && b[start - 1] == b'<' && after == Some(b'>') {
        return Some((end + 1, false));
    }
    let flag = (b[start..end].starts_with(b"--")
        || (b[start..end].starts_with(b"-") && single_dash_flag(&b[start..end])))
        && after == Some(b' ');
    match b.get(end + 1) {
        Some(&c) if flag && c != b'-' && !c.is_ascii_whitespace() => Some((end + 1, false)),
        _ => None,
    }
}

/// A value under a key named `key` that is key material: 20-200 characters
/// of the base64 / token alphabet with upper case, lower case and digits,
/// and at least 4 bits of entropy per character. Hex strings (hashes, ids)
/// and UUIDs fail this on purpose: `"key": "5d41402a..."` is a cache key far
/// more often than a secret.
pub fn key_material(v: &str) -> bool {
    let b = v.as_bytes();
    if !(20..=200).contains(&b.len())
        || !b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-'))
        || !b.iter().any(u8::is_ascii_uppercase)
        || !b.iter().any(u8::is_ascii_lowercase)
        || !b.iter().any(u8::is_ascii_digit)
    {
        return false;
    }
    let mut counts = [0u32; 128];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&k| k > 0)
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum();
    entropy >= 4.0
}

/// Is `b[i]` inside an ARN (the token around it starts with `arn:`)?
fn in_arn(b: &[u8], i: usize) -> bool {
    let tok = b[..i]
        .iter()
        .rposition(|&c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'=' | b','))
        .map_or(0, |k| k + 1);
    b[tok..i].starts_with(b"arn:")
}

/// `-password`, `-storepass`, `-keypass`, `-passphrase` (Java and OpenSSL
/// tools take one dash): only password flags, since a one-dash word in prose
/// is common.
fn single_dash_flag(flag: &[u8]) -> bool {
    let f = flag.to_ascii_lowercase();
    f.len() > 4 && (f.ends_with(b"pass") || f.ends_with(b"password") || f.ends_with(b"passphrase"))
}

/// A value that refers to a secret kept elsewhere, at the start of `s`:
/// `${VAR}`, `${VAR:-default}`, `$VAR`, `$(cmd)`, `{{ .Values.x }}`,
/// `%(name)s`, `#{...}`, `<%= ... %>`, an ARN, a Vault, SOPS, 1Password,
/// Key Vault or secret-manager reference. Returns its length: such a value
/// is not a secret and keeps its text.
pub fn reference_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let closing = |open: u8, close: u8, from: usize| -> Option<usize> {
        let mut depth = 0usize;
        for (i, &c) in b.iter().enumerate().skip(from) {
            if c == open {
                depth += 1;
            } else if c == close {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
        }
        None
    };
    // Dispatched on the first byte: most values (random tokens, passwords)
    // start with a byte no form starts with, and a value that starts with a
    // letter is compared only with the prefixes that start with it.
    match *b.first()? {
        b'$' => {
            if s.starts_with("${") {
                return closing(b'{', b'}', 1);
            }
            if s.starts_with("$(") {
                return closing(b'(', b')', 1);
            }
            let r = &b[1..];
            let n = r
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            let first_ok = r
                .first()
                .is_some_and(|c| c.is_ascii_uppercase() || *c == b'_');
            let ends = r.get(n).is_none_or(|c| !c.is_ascii_alphanumeric());
            (first_ok && n >= 2 && ends).then_some(n + 1)
        }
        b'#' => s
            .starts_with("#{")
            .then(|| closing(b'{', b'}', 1))
            .flatten(),
        b'{' => s
            .starts_with("{{")
            .then(|| s.find("}}").map(|i| i + 2))
            .flatten(),
        b'<' => s
            .starts_with("<%")
            .then(|| s.find("%>").map(|i| i + 2))
            .flatten(),
        b'%' => {
            let r = s.strip_prefix("%(")?;
            let close = r.find(')')?;
            let name_ok = r[..close]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
            let conv = r.as_bytes().get(close + 1)?;
            (name_ok && conv.is_ascii_alphabetic()).then_some(close + 4)
        }
        b'E' => s
            .starts_with("ENC[")
            .then(|| s.find(']').map_or(s.len(), |i| i + 1)),
        b'@' => s
            .starts_with("@Microsoft.KeyVault(")
            .then(|| closing(b'(', b')', 0))
            .flatten(),
        b'p' => gcp_secret_name(s).then(|| token_len(s)),
        c if REFERENCE_FIRST.contains(&c) => REFERENCE_PREFIXES
            .iter()
            .any(|p| p.as_bytes().first() == Some(&c) && s.starts_with(p))
            .then(|| token_len(s)),
        _ => None,
    }
}

/// The first bytes of the references [`reference_len`] knows: `${`, `#{`,
/// `$(`, `$VAR`, `{{`, `<%`, `%(`, `ENC[`, `@Microsoft.KeyVault(`,
/// `projects/` and [`REFERENCE_PREFIXES`] (a test checks that this list
/// covers them).
const REFERENCE_FIRST: &[u8] = b"$#{<%E@p!aefgkorsv";

/// References to a secret manager, read to the end of their token.
const REFERENCE_PREFIXES: &[&str] = &[
    "arn:aws:",
    "arn:aws-cn:",
    "arn:aws-us-gov:",
    "vault:",
    "vault://",
    "ref+",
    "op://",
    "sops:",
    "!vault",
    "secretsmanager:",
    "ssm:",
    "gcpsm://",
    "awssm://",
    "akv://",
    "keyvault:",
    "azurekeyvault:",
    "k8s-secret:",
    "secret://",
    "secretRef:",
    "env:",
    "file:",
];

/// `projects/p/secrets/name/versions/latest` (Google Secret Manager).
fn gcp_secret_name(s: &str) -> bool {
    s.strip_prefix("projects/")
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(_, r)| r.starts_with("secrets/"))
}

/// Length of a quoted value up to its unescaped closing quote (or the line).
fn quoted_len(s: &str, q: u8) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// An unquoted value in free text must look like a credential unless its
/// key is a password: in prose and debug dumps `token: android.os.Binder`,
/// `Session: 30546173_42617`, `auth:SIMPLE` or `token=Token{a64f}` follow a
/// sensitive-looking key but are identifiers. Quoted values and JSON values
/// are not filtered this way: quoting means the writer meant a value.
fn plausible_bare(v: &str, family: Family) -> bool {
    if matches!(family, Family::Password | Family::Pwd) {
        return true;
    }
    let b = v.as_bytes();
    if b.len() < 6 || v.starts_with("0x") || !b.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    if b.len() < 16 && b.iter().all(u8::is_ascii_alphabetic) && word_cased(b) {
        return false;
    }
    !package_like(v)
}

/// Cased like words (`simple`, `SIMPLE`, `Simple`, `AppWindowToken`), not
/// like a random string (`aBcDeFgHiJ`): every upper-case letter after the
/// first starts a run of at least two lower-case ones.
fn word_cased(b: &[u8]) -> bool {
    if b.iter().all(u8::is_ascii_uppercase) {
        return true;
    }
    let mut i = 1;
    while i < b.len() {
        if b[i].is_ascii_uppercase() {
            let run = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase())
                .count();
            if run < 2 {
                return false;
            }
            i += 1 + run;
        } else {
            i += 1;
        }
    }
    true
}

/// `com.apple.xpc.activity/4505`, `android.os.BinderProxy@3a`: a dotted name
/// whose first segment is a lowercase word.
fn package_like(v: &str) -> bool {
    let name_len = v
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '$'))
        .unwrap_or(v.len());
    let mut segs = v[..name_len].split('.');
    let first = segs.next().unwrap_or("");
    first.len() >= 2
        && first.bytes().all(|c| c.is_ascii_lowercase())
        && segs.filter(|s| !s.is_empty()).count() >= 2
}

/// ASCII bytes that end a bare token: whitespace (as `char::is_whitespace`
/// has it: `\t`, `\n`, VT, FF, `\r`, space) and the delimiters below.
const TOKEN_END: [bool; 128] = {
    let mut t = [false; 128];
    let ends = b"\t\n\x0b\x0c\r ,;&\"'<>(){}[]|\\";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

/// Length of a bare token: up to whitespace (Unicode's, as
/// `char::is_whitespace`) or a delimiter. Bytes are scanned; only a
/// non-ASCII character is decoded, to ask whether it is whitespace.
fn token_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if TOKEN_END[usize::from(c)] {
                return i;
            }
            i += 1;
        } else {
            // `i` is at a character boundary: only whole characters are
            // stepped over.
            match s[i..].chars().next() {
                Some(ch) if ch.is_whitespace() => return i,
                Some(ch) => i += ch.len_utf8(),
                None => return i,
            }
        }
    }
    b.len()
}

/// Do the lowercased ASCII letters and digits of `raw` end with `suffix`?
/// Returns the index in `raw` of the first of them that matched.
fn norm_suffix(raw: &[u8], suffix: &[u8]) -> Option<usize> {
    let mut alnum = raw
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, c)| c.is_ascii_alphanumeric());
    let mut first = None;
    for &want in suffix.iter().rev() {
        match alnum.next() {
            Some((i, c)) if c.to_ascii_lowercase() == want => first = Some(i),
            _ => return None,
        }
    }
    first
}

/// A camelCase or separator boundary before `raw[i]`.
fn boundary(raw: &[u8], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let prev = raw[i - 1];
    !prev.is_ascii_alphanumeric()
        || (raw[i].is_ascii_uppercase() && (prev.is_ascii_lowercase() || prev.is_ascii_digit()))
}

/// `STRIPE_KEY`, `DD_APP_KEY`: environment-style names ending in `_KEY`.
fn is_env_key(key: &str) -> bool {
    let k = key.trim_start_matches('-');
    k.len() > 4
        && k.ends_with("_KEY")
        && !k.ends_with("PUBLIC_KEY")
        && k.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

/// Values that are not secrets even under a sensitive key.
pub fn skip_value(v: &str, family: Family) -> bool {
    let v = v.trim();
    if v.is_empty() || v.starts_with("[REDACTED") || reference_len(v).is_some() {
        return true;
    }
    if v.bytes()
        .all(|c| c == b'*' || c == b'x' || c == b'X' || c == b'#' || c == b'.')
    {
        return true;
    }
    const PLACEHOLDERS: &[&str] = &[
        "true",
        "false",
        "null",
        "none",
        "nil",
        "<nil>",
        "undefined",
        "n/a",
        "<redacted>",
        "redacted",
        "[]",
        "{}",
    ];
    if v.len() <= 10 && PLACEHOLDERS.iter().any(|p| v.eq_ignore_ascii_case(p)) {
        return true;
    }
    if v.starts_with('{') || v.starts_with('[') {
        return true;
    }
    match family {
        Family::Password => false,
        Family::KeyMaterial => !key_material(v),
        Family::Pwd => v.starts_with('/') || v.starts_with('~'),
        _ => v.len() <= 5 && v.bytes().all(|c| c.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition `token_len` scans bytes for.
    fn token_len_chars(s: &str) -> usize {
        s.find(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';'
                        | '&'
                        | '"'
                        | '\''
                        | '<'
                        | '>'
                        | '('
                        | ')'
                        | '{'
                        | '}'
                        | '['
                        | ']'
                        | '|'
                        | '\\'
                )
        })
        .unwrap_or(s.len())
    }

    #[test]
    fn token_len_is_the_char_definition() {
        let pieces = [
            "a", "Z9", "_-", ".", "=", "/", ":", "é", "\u{a0}", "\u{2003}", "\u{85}", "\u{3000}",
            "😀", "\u{b}", "\u{c}", "\u{1c}", "\u{7f}", " ", "\t", "\n", "\r", ",", ";", "&", "\"",
            "'", "<", ">", "(", ")", "{", "}", "[", "]", "|", "\\", "ſ",
        ];
        let mut seed = 0x1234_5678_9abc_def1_u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 9) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            assert_eq!(token_len(&s), token_len_chars(&s), "{s:?}");
        }
    }

    /// `classify` as it was before the stems were indexed by their last
    /// byte: every stem, longest first.
    fn classify_linear(m: &KeyMatcher, key: &str, ctx: Context) -> Option<(RuleId, Family)> {
        let raw = key.as_bytes();
        let n = raw.iter().filter(|c| c.is_ascii_alphanumeric()).count();
        for stem in &m.stems {
            let s = stem.norm.as_bytes();
            if s.len() > n {
                continue;
            }
            let Some(first) = norm_suffix(raw, s) else {
                continue;
            };
            if stem.query_only && ctx != Context::Query {
                continue;
            }
            if stem.needs_boundary && n > s.len() && !boundary(raw, first) {
                continue;
            }
            return Some((stem.rule, stem.family));
        }
        if is_env_key(key) {
            return Some((m.env_key, Family::Plain));
        }
        let named_key = norm_suffix(raw, b"key").is_some_and(|k| n == 3 || boundary(raw, k))
            && norm_suffix(raw, b"publickey").is_none()
            && norm_suffix(raw, b"pubkey").is_none();
        named_key.then_some((m.key_material, Family::KeyMaterial))
    }

    #[test]
    fn classify_by_last_byte_is_the_linear_scan() {
        let extra: Vec<String> = ["pin", "x-internal-sig", "clé", "9lives", "Otp_Code"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = KeyMatcher::new(&extra, &mut Labels::default()).unwrap();
        let mut names: Vec<String> = m.stems.iter().map(|s| s.norm.clone()).collect();
        names.extend(
            [
                "publickey",
                "pubkey",
                "monkey",
                "bypass",
                "oauth",
                "id",
                "x",
            ]
            .map(String::from),
        );
        let prefixes = [
            "", "db_", "DB_", "x-", "my", "My", "-", "--", "api", "_", "2", "a.b.",
        ];
        let suffixes = ["", "s", "_", "1", "X", "-", "é", ":"];
        let mut keys = Vec::new();
        for name in &names {
            for p in prefixes {
                for s in suffixes {
                    let base = format!("{p}{name}{s}");
                    keys.push(base.to_uppercase());
                    keys.push(base.clone());
                    let mut cap = name.clone();
                    if let Some(f) = cap.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    keys.push(format!("{p}{cap}{s}"));
                    keys.push(format!("{p}{}{s}", name.replace('e', "_E")));
                }
            }
        }
        // Random names over the letters of the stems and separators.
        let alphabet = b"aAkKeEyYsSpPwWdDnNoOtTiI_-.019";
        let mut seed = 0x1234_5678_9abc_def1_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let key: String = (0..len)
                .map(|i| alphabet[((seed >> (i * 5)) % alphabet.len() as u64) as usize] as char)
                .collect();
            keys.push(key);
        }
        keys.push(String::new());
        let mut sensitive = 0;
        for key in &keys {
            for ctx in [Context::Query, Context::Other] {
                let got = m.classify(key, ctx).map(|k| (k.rule, k.family));
                assert_eq!(got, classify_linear(&m, key, ctx), "{key:?} {ctx:?}");
                sensitive += usize::from(got.is_some());
            }
        }
        // Both verdicts occur often.
        assert!(
            sensitive > 5_000 && keys.len() * 2 - sensitive > 5_000,
            "{sensitive}"
        );
    }

    #[test]
    fn reference_first_bytes_cover_every_form() {
        for p in REFERENCE_PREFIXES {
            assert!(REFERENCE_FIRST.contains(&p.as_bytes()[0]), "{p}");
            assert!(reference_len(&format!("{p}x/y")).is_some(), "{p}");
        }
        let forms = [
            "${DB_PASSWORD}",
            "${X:-d}",
            "#{secret}",
            "$(cat /run/s)",
            "$DB_PASS",
            "$_X1",
            "{{ .Values.pw }}",
            "<%= pw %>",
            "%(pw)s",
            "ENC[AES256_GCM,data:x]",
            "@Microsoft.KeyVault(SecretUri=x)",
            "projects/p/secrets/name/versions/1",
        ];
        for f in forms {
            assert!(REFERENCE_FIRST.contains(&f.as_bytes()[0]), "{f}");
            assert!(reference_len(f).is_some(), "{f}");
        }
        // Near misses: the form after another first byte, or not a form.
        for s in [
            "x${A}",
            "1arn:aws:x",
            "Vault:x",
            "FILE:x",
            "$a",
            "$(",
            "{x}",
            "",
            "é",
        ] {
            assert_eq!(reference_len(s), None, "{s}");
        }
    }

    #[test]
    fn norm_suffix_matches_the_normalized_name() {
        assert_eq!(norm_suffix(b"DB_PASSWORD", b"password"), Some(3));
        assert_eq!(norm_suffix(b"x-api-key", b"apikey"), Some(2));
        assert_eq!(norm_suffix(b"apikey", b"xapikey"), None);
        assert_eq!(norm_suffix(b"key", b"key"), Some(0));
        assert_eq!(norm_suffix(b"monkey", b"key"), Some(3));
        assert_eq!(norm_suffix(b"--", b"key"), None);
    }
}
