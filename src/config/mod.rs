//! The agent's configuration (`agent.toml`, SPEC §6).
//!
//! Loading is three steps, each reporting `file:line:col`:
//! 1. `${VAR}` interpolation on the raw text ([`interp`]),
//! 2. typed deserialization with unknown keys rejected (serde + `toml`),
//! 3. semantic validation ([`Config::validate`]): globs, templates, ids,
//!    and the sections' own checks.
//!
//! Every field has a default, so an empty file is a valid config that tails
//! nothing into the local directory bucket.

pub mod api;
pub mod bucket;
pub mod error;
pub mod interp;
pub mod source;
pub mod stream;
pub mod streams;
pub mod units;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::IdField;
pub use api::ApiConfig;
pub use bucket::{BucketConfig, BucketKind};
pub use error::{ConfigError, ConfigErrors, SourceText};
pub use source::{Format, MultilineConfig, MultilineMode, ReadFrom, SourceConfig};
pub use streams::StreamsConfig;
pub use units::{ByteSize, HumanDuration};

/// The whole `agent.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub agent: AgentConfig,
    pub segments: SegmentsConfig,
    pub redaction: crate::redact::RedactionConfig,
    pub sources: Vec<SourceConfig>,
    pub bucket: BucketConfig,
    pub alerts: crate::alert::AlertsConfig,
    pub metrics: MetricsConfig,
    pub api: ApiConfig,
    pub streams: StreamsConfig,
}

/// `[agent]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Identifies this agent in every event; default: the host name.
    pub instance_id: Option<String>,
    /// Checkpoints, open and sealed segments, the upload spool.
    pub data_dir: PathBuf,
    /// How long a graceful stop may take to seal and upload.
    pub shutdown_timeout: HumanDuration,
    /// Log filter for the agent's own logs (`RUST_LOG` syntax).
    pub log_level: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            instance_id: None,
            data_dir: PathBuf::from("/var/lib/logship"),
            shutdown_timeout: HumanDuration::secs(30),
            log_level: "info".into(),
        }
    }
}

impl AgentConfig {
    /// The configured instance id, or the host name, or `"unknown"`.
    pub fn instance_id(&self) -> String {
        if let Some(id) = self.instance_id.as_deref().filter(|s| !s.is_empty()) {
            return id.to_string();
        }
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// `[segments]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentsConfig {
    /// Seal a segment at this size (uncompressed NDJSON).
    pub max_bytes: ByteSize,
    /// Seal a segment this long after its first event (and at UTC midnight).
    pub max_age: HumanDuration,
    /// Keep uploaded segments locally this long.
    pub local_retention: HumanDuration,
    /// Stop reading sources when segments not yet uploaded take this much.
    pub max_disk: ByteSize,
    /// Seal a build/deploy segment that got no event for this long.
    pub build_idle_timeout: HumanDuration,
    /// How often appended events are made durable (fsync + checkpoint). A
    /// crash loses nothing either way; this bounds re-reading after one.
    pub commit_interval: HumanDuration,
    /// gzip level for sealed segments (1 fastest .. 9 smallest).
    pub compression_level: u32,
}

impl Default for SegmentsConfig {
    fn default() -> Self {
        SegmentsConfig {
            max_bytes: ByteSize::mib(16),
            max_age: HumanDuration::secs(3600),
            local_retention: HumanDuration::secs(3 * 86400),
            max_disk: ByteSize::gib(2),
            build_idle_timeout: HumanDuration::secs(600),
            commit_interval: HumanDuration::millis(200),
            compression_level: 1,
        }
    }
}

/// `[metrics]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: "0.0.0.0:9464".into(),
        }
    }
}

/// A loaded, validated config with the text it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub source: SourceText,
}

/// Where the config comes from when `-c` is not given (SPEC §5).
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGSHIP_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let etc = PathBuf::from("/etc/logship/agent.toml");
    if etc.exists() {
        etc
    } else {
        PathBuf::from("agent.toml")
    }
}

/// Read, interpolate from the process environment, parse and validate.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read config: {e}"),
        }])
    })?;
    load_str(path, text, &|k| std::env::var(k).ok())
}

/// As [`load`], from text and an environment lookup (for tests and reload).
pub fn load_str(
    path: &Path,
    text: String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let mut source = SourceText::new(path, text);
    let interpolated = interp::interpolate(&mut source, env).map_err(|e| ConfigErrors(vec![e]))?;
    let config: Config = toml::from_str(&interpolated).map_err(|e| {
        ConfigErrors(vec![
            source.error_at_parsed(e.span(), error::with_suggestion(e.message()))
        ])
    })?;
    let mut config = config;
    let base = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => std::env::current_dir().unwrap_or_default().join(p),
        None => std::env::current_dir().unwrap_or_default(),
    };
    config.resolve_relative(&base);
    let errors = config.validate(&source);
    if errors.is_empty() {
        Ok(Loaded { config, source })
    } else {
        Err(ConfigErrors(errors))
    }
}

impl Config {
    /// Semantic checks that types alone cannot express.
    pub fn validate(&self, src: &SourceText) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut names = HashSet::new();
        for s in &self.sources {
            let name = s.name.get_ref();
            if !crate::event::is_safe_id(name) {
                errors.push(src.error_at_parsed(
                    Some(s.name.span()),
                    format!("source name {name:?} must be 1-128 of [A-Za-z0-9_.-]"),
                ));
            }
            if !names.insert(name.clone()) {
                errors.push(src.error_at_parsed(
                    Some(s.name.span()),
                    format!("duplicate source name {name:?}; names must be unique"),
                ));
            }
            errors.extend(stream::validate(s, src));
            let files = !stream::is_stream(s);
            if files && s.include.get_ref().is_empty() {
                // A missing `include` has an empty span: point at the name.
                let span = Some(s.include.span()).filter(|r| !r.is_empty());
                errors.push(src.error_at_parsed(
                    span.or(Some(s.name.span())),
                    "include is empty; give at least one glob such as \"/var/log/app/*.log\"",
                ));
            }
            // The tailer's own constructors: what passes here is what runs.
            if let Err(e) = crate::source::discover::SourceMatcher::new(s) {
                if files {
                    errors.push(src.error_at_parsed(Some(s.include.span()), e.to_string()));
                }
            }
            if let Some(t) = &s.path_template {
                if let Err(e) = crate::source::template::PathTemplate::parse(t.get_ref()) {
                    errors.push(src.error_at_parsed(Some(t.span()), e.to_string()));
                }
            }
            if let Some(ml) = &s.multiline {
                for (span, msg) in ml.limit_errors() {
                    errors.push(src.error_at_parsed(Some(span), msg));
                }
                // The grouper's own constructor: what passes here is what runs.
                if let Err(e) = crate::pipeline::multiline::Rules::new(ml) {
                    use crate::pipeline::multiline::MultilineError as E;
                    let span = match &e {
                        E::Regex { key: "start", .. } | E::PatternWithoutCustom("start") => {
                            ml.start.as_ref().map(|s| s.span())
                        }
                        E::Regex { .. } | E::PatternWithoutCustom(_) => {
                            ml.continue_.as_ref().map(|s| s.span())
                        }
                        E::CustomWithoutPattern => Some(ml.mode.span()),
                    };
                    errors.push(src.error_at_parsed(span, format!("multiline: {e}")));
                }
            }
            for key in s.id_fields.keys() {
                if IdField::parse(key.get_ref()).is_none() {
                    errors.push(src.error_at_parsed(
                        Some(key.span()),
                        error::with_suggestion(&format!(
                            "unknown field `{}`, expected one of {}",
                            key.get_ref(),
                            IdField::ALL.map(|n| format!("`{n}`")).join(", ")
                        )),
                    ));
                }
            }
        }
        if let Some(id) = &self.agent.instance_id {
            if !id.is_empty() && !crate::event::is_safe_id(id) {
                errors.push(src.error_at(
                    None,
                    format!("agent.instance_id {id:?} must be 1-128 of [A-Za-z0-9_.-] (it becomes part of object keys)"),
                ));
            }
        }
        if !(1..=9).contains(&self.segments.compression_level) {
            errors.push(src.error_at(None, "segments.compression_level must be between 1 and 9"));
        }
        if self.metrics.enabled && self.metrics.listen.parse::<SocketAddr>().is_err() {
            errors.push(src.error_at(
                None,
                format!(
                    "metrics.listen {:?} is not an address; write e.g. \"0.0.0.0:9464\"",
                    self.metrics.listen
                ),
            ));
        }
        errors.extend(self.bucket.validate(src));
        errors.extend(self.redaction.validate(src));
        errors.extend(self.alerts.validate(src));
        errors.extend(self.api.validate(src));
        errors.extend(self.streams.validate(src));
        errors.sort_by_key(|e| (e.line, e.col));
        errors
    }

    /// Relative paths in the config (data_dir, include globs, path
    /// templates, a dir bucket's path) are relative to the config file's
    /// directory, so a config works the same from any working directory.
    fn resolve_relative(&mut self, base: &Path) {
        let abs = |p: &Path| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        let abs_str = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                base.join(p).to_string_lossy().into_owned()
            }
        };
        self.agent.data_dir = abs(&self.agent.data_dir);
        if let Some(p) = &self.bucket.path {
            self.bucket.path = Some(abs(p));
        }
        for s in &mut self.sources {
            for pattern in s.include.get_mut() {
                *pattern = abs_str(pattern);
            }
            if let Some(t) = &mut s.path_template {
                let resolved = abs_str(t.get_ref());
                *t.get_mut() = resolved;
            }
        }
    }

    /// `{data_dir}/bucket` unless `bucket.path` says otherwise.
    pub fn dir_bucket_path(&self) -> PathBuf {
        self.bucket
            .path
            .clone()
            .unwrap_or_else(|| self.agent.data_dir.join("bucket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Loaded, ConfigErrors> {
        load_str(Path::new("agent.toml"), text.to_string(), &|k| {
            (k == "HOST").then(|| "h1".to_string())
        })
    }

    #[test]
    fn empty_config_is_valid_with_defaults() {
        let l = load_text("").unwrap();
        assert_eq!(l.config.segments.max_bytes, ByteSize::mib(16));
        assert_eq!(l.config.bucket.kind, BucketKind::Dir);
        assert!(l.config.redaction.enabled);
    }

    #[test]
    fn typo_gets_position_and_suggestion() {
        let e = load_text(
            "[[sources]]\nname = \"a\"\ninclude = [\"/x/*.log\"]\ntier_name = \"build\"\n",
        )
        .unwrap_err();
        let e = &e.0[0];
        assert_eq!((e.line, e.col), (4, 1), "{e}");
        assert!(e.message.contains("did you mean \"tier\""), "{e}");
    }

    #[test]
    fn formats_and_multiline_parse() {
        let l = load_text(
            "[[sources]]\nname = \"a\"\ninclude = [\"/x/*.log\"]\nformat = \"cri\"\n[sources.multiline]\nmode = \"java\"\ntimeout = \"2s\"\nmax_lines = 50\n",
        )
        .unwrap();
        let s = &l.config.sources[0];
        assert_eq!(s.format, Format::Cri);
        let ml = s.multiline.as_ref().unwrap();
        assert_eq!(*ml.mode.get_ref(), MultilineMode::Java);
        assert_eq!(
            (*ml.max_lines.get_ref(), ml.max_bytes.get_ref().0),
            (50, 256 * 1024)
        );
    }

    #[test]
    fn multiline_errors_have_positions() {
        let head = "[[sources]]\nname = \"a\"\ninclude = [\"/x/*.log\"]\n[sources.multiline]\n";
        let cases = [
            ("mode = \"jav\"\n", 5, "did you mean \"java\""),
            (
                "mode = \"custom\"\nstart = '^(\\d'\n",
                6,
                "invalid `start` regex",
            ),
            ("mode = \"custom\"\n", 5, "needs `start` or `continue`"),
            ("continue = '^\\s'\n", 5, "only used with mode = \"custom\""),
            ("max_lines = 0\n", 5, "max_lines must be at least 1"),
            ("timeout = \"0s\"\n", 5, "timeout must be longer than 0s"),
            (
                "max_bytes = \"1MiB\"\n",
                5,
                "max_bytes must be between 1 and",
            ),
            ("lines = 3\n", 5, "unknown key"),
        ];
        for (body, line, want) in cases {
            let e = load_text(&format!("{head}{body}")).unwrap_err();
            let e = &e.0[0];
            assert_eq!(e.line, line, "{body}: {e}");
            assert!(e.message.contains(want), "{body}: {e}");
        }
        let e = load_text("[[sources]]\nname = \"a\"\ninclude = [\"/x\"]\nformat = \"klg\"\n")
            .unwrap_err();
        assert!(e.0[0].message.contains("did you mean \"klog\""), "{e}");
    }

    #[test]
    fn bad_type_gets_position() {
        let e = load_text("[segments]\nmax_bytes = true\n").unwrap_err();
        assert_eq!(e.0[0].line, 2, "{}", e);
    }

    #[test]
    fn bad_enum_value_suggests() {
        let e = load_text("[[sources]]\nname = \"a\"\ninclude = [\"/x\"]\ntier = \"buld\"\n")
            .unwrap_err();
        assert_eq!(e.0[0].line, 4, "{e}");
        assert!(e.0[0].message.contains("did you mean \"build\""), "{e}");
    }

    #[test]
    fn missing_env_var_is_named() {
        let e = load_text("[agent]\ninstance_id = \"${NOPE}\"\n").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].col), (2, 16));
        assert!(e.0[0].message.contains("NOPE"));
        let ok = load_text("[agent]\ninstance_id = \"${HOST}\"\n").unwrap();
        assert_eq!(ok.config.agent.instance_id(), "h1");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_file() {
        let l = load_str(
            Path::new("/etc/logship/agent.toml"),
            "[agent]\ndata_dir = \"data\"\n[[sources]]\nname = \"a\"\ninclude = [\"logs/*.log\", \"/abs/*.log\"]\n".into(),
            &|_| None,
        )
        .unwrap();
        assert_eq!(l.config.agent.data_dir, Path::new("/etc/logship/data"));
        assert_eq!(
            l.config.sources[0].include.get_ref(),
            &["/etc/logship/logs/*.log", "/abs/*.log"]
        );
    }

    #[test]
    fn semantic_errors_point_at_values() {
        let e = load_text(
            "[[sources]]\nname = \"a\"\ninclude = [\"/x/*.log\"]\n\n[[sources]]\nname = \"a\"\ninclude = []\n",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert_eq!(e.0[0].line, 6);
        assert!(e.0[0].message.contains("duplicate"));
        assert_eq!(e.0[1].line, 7);
    }
}
