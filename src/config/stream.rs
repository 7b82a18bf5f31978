//! Event-stream sources (SPEC §11): `[[sources]]` with `kind = "http_ndjson"`
//! or `kind = "vercel"` follow a long-lived HTTP response instead of files.
//!
//! The keys live on [`SourceConfig`] (TOML puts them in the same table), but
//! their meaning lives here: [`StreamSpec::from_source`] is the one
//! constructor the agent runs, and validation is calling it — what `check`
//! accepts is what the agent follows. Secrets (header values, the token)
//! are [`Secret`]s: their `Debug` prints a mask, so no `{:?}` of a config
//! can leak them, and `check` prints only whether they are set.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, SourceText};
use super::source::SourceConfig;
use crate::event::Tier;

/// The `kind` values that make a source an event stream.
pub const HTTP_NDJSON: &str = "http_ndjson";
pub const VERCEL: &str = "vercel";

/// Vercel's API, unless `api_base` says otherwise.
pub const VERCEL_API: &str = "https://api.vercel.com";

/// A value that must never be printed or logged.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"******\"")
    }
}

/// Which API a stream source speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// One URL, one long-lived GET.
    HttpNdjson {
        url: reqwest::Url,
        /// Request headers; the values are secrets.
        headers: Vec<(String, Secret)>,
        /// Field whose value is unique per event (de-duplication).
        id_field: Option<String>,
        /// Field whose value is the resume position.
        cursor_field: Option<String>,
        /// Query parameter that carries the cursor back.
        cursor_param: String,
    },
    /// A Vercel project: its deployments and their event streams.
    Vercel {
        api_base: reqwest::Url,
        token: Secret,
        project_id: String,
        team_id: Option<String>,
        /// Deployments created this long ago or later are followed.
        lookback: Duration,
        /// How often the deployment list is fetched again.
        poll_interval: Duration,
    },
}

/// One stream source, validated: what the agent runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// The source's name (`src` of its events, the metrics label).
    pub name: String,
    /// Tier of its events.
    pub tier: Tier,
    pub kind: StreamKind,
    /// `/readyz` fails once the stream has failed for this long.
    pub not_ready_after: Duration,
}

/// Whether a source follows an event stream rather than files.
pub fn is_stream(s: &SourceConfig) -> bool {
    s.kind == HTTP_NDJSON || s.kind == VERCEL
}

/// Keys only stream sources take, with whether this source set them.
fn stream_only_keys(s: &SourceConfig) -> [(&'static str, bool); 12] {
    [
        ("url", s.url.is_some()),
        ("headers", !s.headers.is_empty()),
        ("id_field", s.id_field.is_some()),
        ("cursor_field", s.cursor_field.is_some()),
        ("cursor_param", s.cursor_param.is_some()),
        ("token", s.token.is_some()),
        ("project_id", s.project_id.is_some()),
        ("team_id", s.team_id.is_some()),
        ("api_base", s.api_base.is_some()),
        ("lookback", s.lookback.is_some()),
        ("poll_interval", s.poll_interval.is_some()),
        ("not_ready_after", s.not_ready_after.is_some()),
    ]
}

/// Why a stream source's settings cannot run.
#[derive(Debug, thiserror::Error)]
pub enum StreamConfigError {
    #[error("kind = \"{kind}\" needs `{key}`; {hint}")]
    Missing {
        kind: &'static str,
        key: &'static str,
        hint: &'static str,
    },
    #[error("`{key}` is not a URL ({reason}); write e.g. \"{example}\"")]
    BadUrl {
        key: &'static str,
        reason: String,
        example: &'static str,
    },
    #[error("`{key}` must be an http:// or https:// URL")]
    Scheme { key: &'static str },
    #[error("header name {0:?} is not a valid HTTP header name")]
    HeaderName(String),
    #[error("the value of header {0:?} is not a valid HTTP header value (control characters?)")]
    HeaderValue(String),
    #[error("`{key}` is only for kind = \"{kind}\"; remove it")]
    Foreign {
        key: &'static str,
        kind: &'static str,
    },
    #[error("`{0}` is for file sources; an event-stream source reads no files")]
    FileKey(&'static str),
    #[error("`poll_interval` must be at least 1s")]
    PollTooShort,
}

impl StreamSpec {
    /// Build the stream a source describes; `None` for a file source.
    pub fn from_source(s: &SourceConfig) -> Option<Result<StreamSpec, StreamConfigError>> {
        is_stream(s).then(|| Self::build(s))
    }

    fn build(s: &SourceConfig) -> Result<StreamSpec, StreamConfigError> {
        if !s.include.get_ref().is_empty() {
            return Err(StreamConfigError::FileKey("include"));
        }
        if !s.exclude.is_empty() {
            return Err(StreamConfigError::FileKey("exclude"));
        }
        if s.path_template.is_some() {
            return Err(StreamConfigError::FileKey("path_template"));
        }
        let kind = if s.kind == VERCEL {
            Self::vercel(s)?
        } else {
            Self::http_ndjson(s)?
        };
        Ok(StreamSpec {
            name: s.name.get_ref().clone(),
            tier: s.tier,
            kind,
            not_ready_after: s
                .not_ready_after
                .map_or(Duration::from_secs(300), |d| d.get()),
        })
    }

    fn http_ndjson(s: &SourceConfig) -> Result<StreamKind, StreamConfigError> {
        for (key, set) in stream_only_keys(s) {
            if set && VERCEL_ONLY.contains(&key) {
                return Err(StreamConfigError::Foreign { key, kind: VERCEL });
            }
        }
        let url = s.url.as_ref().ok_or(StreamConfigError::Missing {
            kind: HTTP_NDJSON,
            key: "url",
            hint: "write e.g. url = \"http://127.0.0.1:8080/events?follow=1\"",
        })?;
        let url = parse_url(
            "url",
            url.get_ref(),
            "http://127.0.0.1:8080/events?follow=1",
        )?;
        let mut headers = Vec::new();
        for (name, value) in &s.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| StreamConfigError::HeaderName(name.clone()))?;
            reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| StreamConfigError::HeaderValue(name.clone()))?;
            headers.push((name.clone(), value.clone()));
        }
        Ok(StreamKind::HttpNdjson {
            url,
            headers,
            id_field: s.id_field.clone().filter(|f| !f.is_empty()),
            cursor_field: s.cursor_field.clone().filter(|f| !f.is_empty()),
            cursor_param: s
                .cursor_param
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "since".into()),
        })
    }

    fn vercel(s: &SourceConfig) -> Result<StreamKind, StreamConfigError> {
        for (key, set) in stream_only_keys(s) {
            if set && HTTP_ONLY.contains(&key) {
                return Err(StreamConfigError::Foreign {
                    key,
                    kind: HTTP_NDJSON,
                });
            }
        }
        let token =
            s.token
                .clone()
                .filter(|t| !t.expose().is_empty())
                .ok_or(StreamConfigError::Missing {
                kind: VERCEL,
                key: "token",
                hint:
                    "write token = \"${VERCEL_TOKEN}\" (an access token from the Vercel dashboard)",
            })?;
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| StreamConfigError::HeaderValue("Authorization".into()))?;
        let project_id = s
            .project_id
            .as_ref()
            .map(|p| p.get_ref().clone())
            .filter(|p| !p.is_empty())
            .ok_or(StreamConfigError::Missing {
                kind: VERCEL,
                key: "project_id",
                hint: "write project_id = \"prj_...\" (Project Settings → General)",
            })?;
        let base = s.api_base.as_ref().map_or(VERCEL_API, |b| b.get_ref());
        let api_base = parse_url("api_base", base, VERCEL_API)?;
        let poll_interval = s.poll_interval.map_or(Duration::from_secs(30), |d| d.get());
        if poll_interval < Duration::from_secs(1) {
            return Err(StreamConfigError::PollTooShort);
        }
        Ok(StreamKind::Vercel {
            api_base,
            token,
            project_id,
            team_id: s.team_id.clone().filter(|t| !t.is_empty()),
            lookback: s.lookback.map_or(Duration::from_secs(86400), |d| d.get()),
            poll_interval,
        })
    }
}

const VERCEL_ONLY: [&str; 6] = [
    "token",
    "project_id",
    "team_id",
    "api_base",
    "lookback",
    "poll_interval",
];
const HTTP_ONLY: [&str; 5] = ["url", "headers", "id_field", "cursor_field", "cursor_param"];

fn parse_url(
    key: &'static str,
    text: &str,
    example: &'static str,
) -> Result<reqwest::Url, StreamConfigError> {
    let url = reqwest::Url::parse(text).map_err(|e| StreamConfigError::BadUrl {
        key,
        reason: e.to_string(),
        example,
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(StreamConfigError::Scheme { key });
    }
    Ok(url)
}

/// The stream sources of a config, in order (skipping invalid ones, which
/// validation reports).
pub fn specs(sources: &[SourceConfig]) -> Vec<StreamSpec> {
    sources
        .iter()
        .filter_map(StreamSpec::from_source)
        .filter_map(Result::ok)
        .collect()
}

/// Config errors of one source's stream settings, at `file:line:col`.
pub fn validate(s: &SourceConfig, src: &SourceText) -> Vec<ConfigError> {
    if !is_stream(s) {
        // A file source with a stream key is a mistake worth naming.
        return stream_only_keys(s)
            .iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| {
                src.error_at_parsed(
                    Some(s.name.span()),
                    format!("`{key}` is only for event-stream sources (kind = \"{HTTP_NDJSON}\" or \"{VERCEL}\"); this source tails files"),
                )
            })
            .collect();
    }
    match StreamSpec::from_source(s) {
        Some(Err(e)) => {
            let span = match &e {
                StreamConfigError::BadUrl { key: "url", .. }
                | StreamConfigError::Scheme { key: "url" } => s.url.as_ref().map(|u| u.span()),
                StreamConfigError::BadUrl { .. } | StreamConfigError::Scheme { .. } => {
                    s.api_base.as_ref().map(|u| u.span())
                }
                StreamConfigError::FileKey("include") => Some(s.include.span()),
                _ => None,
            };
            vec![src.error_at_parsed(Some(span.unwrap_or(s.name.span())), e.to_string())]
        }
        _ => Vec::new(),
    }
}

/// Header names with their values masked, for `check`.
pub fn masked_headers(headers: &BTreeMap<String, Secret>) -> String {
    let names: Vec<String> = headers.keys().map(|k| format!("{k}=******")).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{load_str, Loaded};

    fn load(text: &str) -> Result<Loaded, String> {
        load_str(Path::new("agent.toml"), text.to_string(), &|k| {
            (k == "TOK").then(|| "s3cr3t-token".to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn vercel_source_with_defaults() {
        let l = load("[[sources]]\nname = \"v\"\nkind = \"vercel\"\ntier = \"deploy\"\ntoken = \"${TOK}\"\nproject_id = \"prj_1\"\n").unwrap();
        let specs = super::specs(&l.config.sources);
        assert_eq!(specs.len(), 1);
        let dbg = format!("{:?}", l.config);
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        match &specs[0].kind {
            super::StreamKind::Vercel {
                api_base, lookback, ..
            } => {
                assert_eq!(api_base.as_str(), "https://api.vercel.com/");
                assert_eq!(lookback.as_secs(), 86400);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_source() {
        let e = load("[[sources]]\nname = \"v\"\nkind = \"vercel\"\ntoken = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("agent.toml:2:8: kind = \"vercel\" needs `project_id`"),
            "{e}"
        );
        let e = load("[[sources]]\nname = \"h\"\nkind = \"http_ndjson\"\nurl = \"ftp://x\"\n")
            .unwrap_err();
        assert!(e.starts_with("agent.toml:4:7:"), "{e}");
        let e = load("[[sources]]\nname = \"f\"\ninclude = [\"/x/*.log\"]\nurl = \"http://x\"\n")
            .unwrap_err();
        assert!(e.contains("only for event-stream sources"), "{e}");
        let e = load("[[sources]]\nname = \"h\"\nkind = \"http_ndjson\"\nurl = \"http://x/\"\ntoken = \"t\"\n")
            .unwrap_err();
        assert!(e.contains("`token` is only for kind = \"vercel\""), "{e}");
    }
}
