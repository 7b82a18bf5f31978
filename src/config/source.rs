//! `[[sources]]`: which files to tail and how to read them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::stream::Secret;
use super::units::{ByteSize, HumanDuration};
use crate::event::{Level, Tier, MAX_MSG_BYTES};

/// How lines of a source are parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON when the line looks like an object, else logfmt when it looks
    /// like `k=v` pairs, else text.
    #[default]
    Auto,
    Json,
    Logfmt,
    Text,
    /// containerd / CRI-O: `TS STREAM P|F msg`; the inner text as `auto`.
    Cri,
    /// Docker json-file: `{"log","stream","time"}`; the inner text as `auto`.
    Docker,
    /// RFC 3164 / RFC 5424.
    Syslog,
    /// nginx / Apache access log (common or combined).
    Combined,
    /// Kubernetes klog / glog: `I1122 10:00:00.123456 1 file.go:12] msg`.
    Klog,
}

impl Format {
    /// Every format, in the order documented.
    pub const ALL: [Format; 9] = [
        Format::Auto,
        Format::Json,
        Format::Logfmt,
        Format::Text,
        Format::Cri,
        Format::Docker,
        Format::Syslog,
        Format::Combined,
        Format::Klog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Text => "text",
            Format::Cri => "cri",
            Format::Docker => "docker",
            Format::Syslog => "syslog",
            Format::Combined => "combined",
            Format::Klog => "klog",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// `[sources.multiline] mode`: which lines form one record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultilineMode {
    /// Every preset's stack-trace shapes.
    #[default]
    Auto,
    Java,
    Python,
    Go,
    Node,
    Ruby,
    Php,
    Dotnet,
    /// `start` / `continue` regexes.
    Custom,
}

impl MultilineMode {
    pub const ALL: [MultilineMode; 9] = [
        MultilineMode::Auto,
        MultilineMode::Java,
        MultilineMode::Python,
        MultilineMode::Go,
        MultilineMode::Node,
        MultilineMode::Ruby,
        MultilineMode::Php,
        MultilineMode::Dotnet,
        MultilineMode::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MultilineMode::Auto => "auto",
            MultilineMode::Java => "java",
            MultilineMode::Python => "python",
            MultilineMode::Go => "go",
            MultilineMode::Node => "node",
            MultilineMode::Ruby => "ruby",
            MultilineMode::Php => "php",
            MultilineMode::Dotnet => "dotnet",
            MultilineMode::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<MultilineMode> {
        MultilineMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// `[sources.multiline]` (SPEC §9). Checked by `Config::validate` through
/// the grouper's own constructor (`pipeline::multiline::Rules::new`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    #[serde(default = "default_ml_mode")]
    pub mode: Spanned<MultilineMode>,
    /// custom: a line matching this begins a record.
    #[serde(default)]
    pub start: Option<Spanned<String>>,
    /// custom: a line matching this joins the previous one.
    #[serde(default, rename = "continue")]
    pub continue_: Option<Spanned<String>>,
    /// A record with no new line for this long is complete.
    #[serde(default = "default_ml_timeout")]
    pub timeout: Spanned<HumanDuration>,
    /// Lines beyond this are cut (`[TRUNCATED]`, counted).
    #[serde(default = "default_ml_max_lines")]
    pub max_lines: Spanned<u32>,
    /// Bytes of `msg` beyond this are cut (`[TRUNCATED]`, counted).
    #[serde(default = "default_ml_max_bytes")]
    pub max_bytes: Spanned<ByteSize>,
}

impl MultilineConfig {
    /// The defaults, with `mode`.
    pub fn with_mode(mode: MultilineMode) -> MultilineConfig {
        MultilineConfig {
            mode: Spanned::new(0..0, mode),
            start: None,
            continue_: None,
            timeout: default_ml_timeout(),
            max_lines: default_ml_max_lines(),
            max_bytes: default_ml_max_bytes(),
        }
    }

    /// Limit errors as `(span, message)`; regex and mode errors come from
    /// the grouper's constructor.
    pub fn limit_errors(&self) -> Vec<(std::ops::Range<usize>, String)> {
        let mut out = Vec::new();
        if self.timeout.get_ref().get().is_zero() {
            out.push((
                self.timeout.span(),
                "multiline.timeout must be longer than 0s; write e.g. \"1s\"".to_string(),
            ));
        }
        if *self.max_lines.get_ref() == 0 {
            out.push((
                self.max_lines.span(),
                "multiline.max_lines must be at least 1 (e.g. 500)".to_string(),
            ));
        }
        let bytes = self.max_bytes.get_ref().0;
        if bytes == 0 || bytes > MAX_MSG_BYTES as u64 {
            out.push((
                self.max_bytes.span(),
                format!("multiline.max_bytes must be between 1 and {MAX_MSG_BYTES} (256KiB, the longest msg); write e.g. \"64KiB\""),
            ));
        }
        out
    }
}

fn default_ml_mode() -> Spanned<MultilineMode> {
    Spanned::new(0..0, MultilineMode::Auto)
}
fn default_ml_timeout() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::secs(1))
}
fn default_ml_max_lines() -> Spanned<u32> {
    Spanned::new(0..0, 500)
}
fn default_ml_max_bytes() -> Spanned<ByteSize> {
    Spanned::new(0..0, ByteSize(MAX_MSG_BYTES as u64))
}

/// Where to start in a file that already existed at the agent's first start.
/// Files that appear later, and every file after the first start, are read
/// from their checkpoint or from the beginning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

/// One `[[sources]]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name; becomes `src` of its events and the metrics label.
    pub name: Spanned<String>,
    /// Glob patterns of files to tail (`*`, `?`, `[..]`, `**`). Required
    /// for file sources; event-stream sources have none.
    #[serde(default = "no_include")]
    pub include: Spanned<Vec<String>>,
    /// Glob patterns matched against the full path or the file name.
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "default_tier")]
    pub tier: Tier,
    #[serde(default)]
    pub format: Format,
    /// Join the lines of one record (a stack trace) into one event.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    #[serde(default)]
    pub read_from: ReadFrom,
    /// `kind` of events from this source unless the line says otherwise;
    /// `"http_ndjson"` and `"vercel"` instead make the source an event
    /// stream (SPEC §11, `config::stream`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Level of a line when none is detected.
    #[serde(default = "default_level")]
    pub default_level: Level,
    /// A path pattern whose `{name}` captures fill ids, e.g.
    /// `/var/log/app/builds/{date}/{buildId}.log`.
    #[serde(default)]
    pub path_template: Option<Spanned<String>>,
    /// JSON field names that fill the correlation ids, e.g.
    /// `buildId = ["build_id", "build"]`. Replaces the defaults for that id
    /// ([`IdField::default_fields`](crate::event::IdField::default_fields)).
    /// Keys are checked against [`IdField`](crate::event::IdField) names by
    /// `Config::validate`, which knows their positions.
    #[serde(default)]
    pub id_fields: BTreeMap<Spanned<String>, FieldNames>,
    // Event-stream sources only (SPEC §11); meaning and validation in
    // `config::stream`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default)]
    pub cursor_field: Option<String>,
    #[serde(default)]
    pub cursor_param: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub project_id: Option<Spanned<String>>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub api_base: Option<Spanned<String>>,
    #[serde(default)]
    pub lookback: Option<HumanDuration>,
    #[serde(default)]
    pub poll_interval: Option<HumanDuration>,
    #[serde(default)]
    pub not_ready_after: Option<HumanDuration>,
}

/// One field name or a list of them, tried in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FieldNames {
    One(String),
    Many(Vec<String>),
}

impl FieldNames {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            FieldNames::One(s) => vec![s.clone()],
            FieldNames::Many(v) => v.clone(),
        }
    }
}

fn no_include() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn default_tier() -> Tier {
    Tier::System
}
fn default_kind() -> String {
    "line".into()
}
fn default_level() -> Level {
    Level::Info
}
