//! `logship check`: validate the config and print a summary, secrets masked.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::ConfigArg;
use crate::config::{self, BucketKind, Config};

pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let path = args.path();
    match config::load(&path) {
        Ok(loaded) => {
            print!("{}", summary(&path.display().to_string(), &loaded.config));
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Show that a secret is set without showing any of it.
pub fn mask(secret: Option<&str>) -> &'static str {
    match secret {
        Some(s) if !s.is_empty() => "****** (set)",
        _ => "(not set)",
    }
}

/// One event-stream source (SPEC §11): secrets masked, and of the URL
/// only its query's keys (a query may carry a token).
fn stream_summary(src: &crate::config::SourceConfig) -> String {
    use crate::config::stream::{masked_headers, StreamKind, StreamSpec};
    let Some(Ok(spec)) = StreamSpec::from_source(src) else {
        return format!("  - {} kind={} (invalid)", src.name.get_ref(), src.kind);
    };
    let mut s = format!("  - {} kind={} tier={}", spec.name, src.kind, spec.tier);
    match &spec.kind {
        StreamKind::HttpNdjson {
            url,
            id_field,
            cursor_field,
            cursor_param,
            ..
        } => {
            let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
            let _ = write!(
                s,
                " url={}{}{} query_keys={:?} headers={} id_field={} cursor_field={} cursor_param={}",
                url.origin().ascii_serialization(),
                url.path(),
                if keys.is_empty() { "" } else { "?…" },
                keys,
                masked_headers(&src.headers),
                id_field.as_deref().unwrap_or("(none: no de-duplication)"),
                cursor_field.as_deref().unwrap_or("(none: no resume)"),
                cursor_param
            );
        }
        StreamKind::Vercel {
            api_base,
            token,
            project_id,
            team_id,
            lookback,
            poll_interval,
        } => {
            let _ = write!(
                s,
                " project_id={} team_id={} api_base={} lookback={} poll_interval={} token={}",
                project_id,
                team_id.as_deref().unwrap_or("(none)"),
                api_base,
                humantime::format_duration(*lookback),
                humantime::format_duration(*poll_interval),
                mask(Some(token.expose()))
            );
        }
    }
    let _ = write!(
        s,
        " not_ready_after={}",
        humantime::format_duration(spec.not_ready_after)
    );
    s
}

/// A human-readable description of what the agent will do.
pub fn summary(file: &str, c: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{file}: OK");
    let _ = writeln!(
        s,
        "agent: instance_id={} data_dir={} shutdown_timeout={}",
        c.agent.instance_id(),
        c.agent.data_dir.display(),
        c.agent.shutdown_timeout
    );
    let g = &c.segments;
    let _ = writeln!(
        s,
        "segments: max_bytes={} max_age={} local_retention={} max_disk={} build_idle_timeout={}",
        g.max_bytes, g.max_age, g.local_retention, g.max_disk, g.build_idle_timeout
    );
    let _ = writeln!(s, "redaction: {}", c.redaction.summary());
    let _ = writeln!(s, "sources: {}", c.sources.len());
    for src in &c.sources {
        if crate::config::stream::is_stream(src) {
            let _ = writeln!(s, "{}", stream_summary(src));
            continue;
        }
        let _ = writeln!(
            s,
            "  - {} tier={} format={:?} read_from={:?} include={:?} exclude={:?}",
            src.name.get_ref(),
            src.tier,
            src.format,
            src.read_from,
            src.include.get_ref(),
            src.exclude
        );
        if let Some(ml) = &src.multiline {
            let _ = writeln!(
                s,
                "    multiline={} timeout={} max_lines={} max_bytes={}",
                ml.mode.get_ref().as_str(),
                ml.timeout.get_ref(),
                ml.max_lines.get_ref(),
                ml.max_bytes.get_ref()
            );
        }
    }
    let b = &c.bucket;
    match b.kind {
        BucketKind::Dir => {
            let _ = writeln!(s, "bucket: dir {}", c.dir_bucket_path().display());
        }
        kind => {
            let _ = writeln!(
                s,
                "bucket: {:?} bucket={} endpoint={} account_id={} prefix={:?} access_key_id={} secret_access_key={}",
                kind,
                b.bucket.as_deref().unwrap_or("(not set)"),
                b.endpoint.as_deref().unwrap_or("(derived)"),
                b.account_id.as_deref().unwrap_or("(not set)"),
                b.key_prefix(),
                mask(b.access_key_id.as_deref()),
                mask(b.secret_access_key.as_deref()),
            );
        }
    }
    let _ = writeln!(
        s,
        "alerts: {} rules, {} channels, redis={}",
        c.alerts.rules.len(),
        c.alerts.channels.len(),
        if c.alerts.redis_url.is_some() {
            "configured"
        } else {
            "none (per-process suppression)"
        }
    );
    let st = &c.streams;
    let _ = match st.redis_url_masked() {
        Some(url) => writeln!(
            s,
            "streams: redis={url} tiers={:?} key={:?} maxlen={} ca_file={}",
            st.tiers.get_ref(),
            st.key.get_ref(),
            st.maxlen.get_ref(),
            st.redis_ca_file
                .as_ref()
                .map_or("(system roots)", |c| c.get_ref()),
        ),
        None => writeln!(s, "streams: disabled"),
    };
    if let Some(Ok(classes)) = c.bucket.retention_classes() {
        let _ = writeln!(s, "bucket retention by level: {}", classes.describe());
    }
    let _ = writeln!(
        s,
        "metrics: {}",
        if c.metrics.enabled {
            c.metrics.listen.as_str()
        } else {
            "disabled"
        }
    );
    let a = &c.api;
    let _ = match &a.listen {
        Some(l) => writeln!(
            s,
            "api: {} token={} max_tail_clients={} cors_origins={:?}",
            l.get_ref(),
            mask(a.token.as_deref()),
            a.max_tail_clients,
            a.cors_origins
        ),
        None => writeln!(s, "api: disabled"),
    };
    s
}
