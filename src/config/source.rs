//! `[[sources]]`: which files to tail and how to read them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::stream::Secret;
use super::units::HumanDuration;
use crate::event::{Level, Tier};

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
