//! `logship query`: events from local segments and the bucket, merged,
//! de-duplicated and ordered by `(ts, instanceId, seq)`, as NDJSON.
//!
//! An uploaded segment exists both locally (until `local_retention`) and in
//! the bucket; events are identified by `(instanceId, seq)`, so each is
//! printed once. Bucket objects whose `first-ts`/`last-ts` metadata lies
//! outside the time range are not read at all.

use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use regex::Regex;

use crate::config::BucketKind;
use crate::event::{Event, Level, Tier};
use crate::normalize::time::parse_rfc3339;
use crate::pipeline::now_ms;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// system, build, deploy, action or lifecycle.
    #[arg(long)]
    pub tier: String,
    /// Start: RFC 3339, epoch milliseconds, or an age such as "2h" / "3d".
    #[arg(long)]
    pub since: String,
    /// End (exclusive), same forms as --since; default: now.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    /// Minimum level: debug, info, warn, error.
    #[arg(long)]
    pub lvl: Option<String>,
    #[arg(long)]
    pub src: Option<String>,
    #[arg(long = "instance-id")]
    pub instance_id: Option<String>,
    #[arg(long = "project-id")]
    pub project_id: Option<String>,
    #[arg(long = "build-id")]
    pub build_id: Option<String>,
    #[arg(long = "user-id")]
    pub user_id: Option<String>,
    #[arg(long = "req-id")]
    pub req_id: Option<String>,
    /// Regex on `msg`.
    #[arg(long)]
    pub grep: Option<String>,
}

/// A time argument: RFC 3339, epoch ms, or an age before now.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some((t, used)) = parse_rfc3339(s.as_bytes()) {
        if used == s.len() {
            return Ok(t);
        }
    }
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_millis() as i64);
    }
    if s.len() == 10 {
        if let Some((t, _)) = parse_rfc3339(format!("{s}T00:00:00Z").as_bytes()) {
            return Ok(t);
        }
    }
    Err(format!("cannot read time {s:?}; use RFC 3339 (2026-01-02T03:04:05Z), a date, epoch ms, or an age like \"2h\""))
}

struct Filter {
    tier: Tier,
    since: i64,
    until: i64,
    min_lvl: Option<Level>,
    grep: Option<Regex>,
    args: Args,
}

impl Filter {
    fn keep(&self, e: &Event) -> bool {
        let a = &self.args;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        e.tier == self.tier
            && e.ts >= self.since
            && e.ts < self.until
            && self.min_lvl.is_none_or(|l| e.lvl >= l)
            && eq(&a.kind, Some(&e.kind))
            && eq(&a.src, Some(&e.src))
            && eq(&a.instance_id, Some(&e.instance_id))
            && eq(&a.project_id, e.project_id.as_deref())
            && eq(&a.build_id, e.build_id.as_deref())
            && eq(&a.user_id, e.user_id.as_deref())
            && eq(&a.req_id, e.req_id.as_deref())
            && self.grep.as_ref().is_none_or(|r| r.is_match(&e.msg))
    }

    /// Whether an object whose metadata says its events span
    /// `[first_ts, last_ts]` can hold events of the range.
    fn span_may_match(&self, meta: &Path) -> bool {
        let Some(m) = fs::read(meta).ok().and_then(|b| {
            serde_json::from_slice::<std::collections::BTreeMap<String, String>>(&b).ok()
        }) else {
            return true; // no metadata: read it
        };
        let get = |k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok());
        match (get("first-ts"), get("last-ts")) {
            (Some(first), Some(last)) => last >= self.since && first < self.until,
            _ => true,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = args.config.load_or_default()?;
    let tier = Tier::parse(&args.tier).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown tier {:?}; use system, build, deploy, action or lifecycle",
            args.tier
        )
    })?;
    let now = now_ms();
    let since = parse_time(&args.since, now).map_err(anyhow::Error::msg)?;
    let until = match &args.until {
        Some(u) => parse_time(u, now).map_err(anyhow::Error::msg)?,
        None => now + 1,
    };
    let min_lvl = match &args.lvl {
        Some(l) => Some(Level::parse(l).ok_or_else(|| {
            anyhow::anyhow!("unknown level {l:?}; use debug, info, warn or error")
        })?),
        None => None,
    };
    let grep = args.grep.as_deref().map(Regex::new).transpose()?;
    let filter = Filter {
        tier,
        since,
        until,
        min_lvl,
        grep,
        args,
    };
    let dir = match tier {
        Tier::System => "system",
        Tier::Build => "builds",
        Tier::Deploy => "deploys",
        Tier::Action => "projects",
        Tier::Lifecycle => "lifecycle",
    };
    let mut events = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |bytes: &[u8]| {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(e) = std::str::from_utf8(line)
                .map_err(|_| ())
                .and_then(|s| Event::from_json(s).map_err(|_| ()))
            else {
                continue;
            };
            if filter.keep(&e) && seen.insert((e.instance_id.clone(), e.seq)) {
                events.push(e);
            }
        }
    };
    for f in files(&cfg.agent.data_dir.join(dir)) {
        if f.to_string_lossy().ends_with(".ndjson") {
            add(&fs::read(&f)?);
        }
    }
    match cfg.bucket.kind {
        BucketKind::Dir => {
            let root = cfg.dir_bucket_path();
            let base = match cfg.bucket.key_prefix() {
                "" => root.join(dir),
                p => root.join(p).join(dir),
            };
            for f in files(&base) {
                let meta = f
                    .strip_prefix(&root)
                    .map(|rel| {
                        let mut m = root.join(".meta").join(rel).into_os_string();
                        m.push(".json");
                        PathBuf::from(m)
                    })
                    .unwrap_or_default();
                if f.to_string_lossy().ends_with(".ndjson.gz") && filter.span_may_match(&meta) {
                    let mut raw = Vec::new();
                    flate2::read::MultiGzDecoder::new(fs::File::open(&f)?).read_to_end(&mut raw)?;
                    add(&raw);
                }
            }
        }
        _ => eprintln!("logship query: reading r2/s3 buckets is not supported yet; showing local segments only"),
    }
    events.sort_by(|a, b| (a.ts, &a.instance_id, a.seq).cmp(&(b.ts, &b.instance_id, b.seq)));
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::new();
    for e in &events {
        line.clear();
        e.write_json(&mut line);
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files(&p)),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_795_319_384_000;
        assert_eq!(parse_time("2026-11-22T03:49:44Z", now), Ok(now));
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("123", now), Ok(123));
        assert_eq!(
            parse_time("2026-11-22", now),
            Ok(now - (3 * 3600 + 49 * 60 + 44) * 1000)
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }
}
