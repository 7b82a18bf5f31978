//! Which objects and local files can hold a query's events, and the time
//! span each one covers.
//!
//! Objects are filed under the UTC day the agent *wrote* them, so an event
//! can sit under a later day than its `ts`, never an earlier one: the days
//! listed run from the day of `since` less one (clock skew) through today.
//! Build/deploy objects carry no day: a `buildId` addresses its one object
//! directly (one GET, no listing); without one, the tier's whole root is
//! listed. Each listed object's `first-ts`/`last-ts` metadata (one HEAD,
//! run with bounded concurrency) prunes it or gives the merge its opening
//! order. Objects under the `retain-{days}d/` classes of SPEC §13 are
//! found by one delimited listing of the prefix root — for a `buildId`
//! only when [`Reader::retention_classes`] says the bucket uses them, so
//! the plain layout answers a build with exactly one request.
//!
//! Local segments are found under `data_dir` by the same day rule; each
//! file is read up to its length at planning time, recorded in the
//! [`Snapshot`] so `--follow` continues exactly where the query stopped.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};

use super::fetch::next_line;
use super::{Filter, QueryError, Reader, Stats};
use crate::event::Tier;
use crate::normalize::time::days_from_civil;
use crate::segment::layout;
use crate::ship::{list_all, Depth};

/// Where a source's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A bucket object (gzip).
    Object(String),
    /// A local segment file (plain NDJSON), read up to `len` bytes.
    Local { path: PathBuf, len: u64 },
}

/// One object or file to read, with the span of `ts` it holds
/// (`i64::MIN..=i64::MAX` when unknown).
#[derive(Clone, Debug)]
pub struct Source {
    pub origin: Origin,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// Local segment files and the length each was read to.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub local: BTreeMap<PathBuf, u64>,
}

/// More days than this are listed as the whole root, filtered by key.
const MAX_DAY_LISTINGS: i64 = 31;
const DAY_MS: i64 = 86_400_000;

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The days whose prefixes can hold `[since, until)`, as seen at `now`.
pub fn days(filter: &Filter, now: i64) -> std::ops::RangeInclusive<i64> {
    let first = day_of(filter.since.max(0)) - 1;
    first..=day_of(now).max(first)
}

/// The sources of `filter`, sorted by `first_ts`, and the local snapshot.
pub async fn plan(
    reader: &Reader,
    filter: &Filter,
    now: i64,
    stats: &Stats,
) -> Result<(Vec<Source>, Snapshot), QueryError> {
    let mut sources = bucket_sources(reader, filter, now, stats).await?;
    let data_dir = reader.data_dir.clone();
    let f = filter.clone();
    let (local, snapshot) = tokio::task::spawn_blocking(move || local_sources(&data_dir, &f, now))
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
    sources.extend(local);
    sources.sort_by_key(|s| s.first_ts);
    Ok((sources, snapshot))
}

async fn bucket_sources(
    reader: &Reader,
    filter: &Filter,
    now: i64,
    stats: &Stats,
) -> Result<Vec<Source>, QueryError> {
    let tier = filter.query_tier();
    if let (true, Some(id)) = (layout::per_build(tier), filter.ids.build_id.as_deref()) {
        // One GET: the fetch itself finds out whether the object exists.
        Stats::add(&stats.listed, 1);
        let mut keys = vec![layout::build_key(&reader.prefix, tier, id)];
        if reader.retention_classes {
            let roots = retention_roots(reader, stats).await?;
            keys.extend(roots.iter().map(|r| layout::build_key(r, tier, id)));
        }
        return Ok(keys
            .into_iter()
            .map(|k| Source {
                origin: Origin::Object(k),
                first_ts: i64::MIN,
                last_ts: i64::MAX,
            })
            .collect());
    }
    let mut roots = vec![reader.prefix.clone()];
    roots.extend(retention_roots(reader, stats).await?);
    let mut keys = Vec::new();
    for root in &roots {
        keys.extend(list_tier(reader, root, tier, filter, now, stats).await?);
    }
    Stats::add(&stats.listed, keys.len() as u64);
    let heads = stream::iter(keys)
        .map(|key| async move {
            Stats::add(&stats.requests, 1);
            let info = reader.bucket.head(&key).await?;
            Ok::<_, QueryError>((key, info))
        })
        .buffer_unordered(reader.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::new();
    for h in heads {
        let (key, info) = h?;
        let Some(info) = info else { continue }; // deleted since listing
        let num = |k: &str| info.meta.get(k).and_then(|v| v.parse::<i64>().ok());
        let (first, last) = match (num("first-ts"), num("last-ts")) {
            (Some(f), Some(l)) => (f, l),
            _ => (i64::MIN, i64::MAX),
        };
        if !filter.span_may_match(first, last) {
            Stats::add(&stats.pruned, 1);
            continue;
        }
        out.push(Source {
            origin: Origin::Object(key),
            first_ts: first,
            last_ts: last,
        });
    }
    Ok(out)
}

/// `{prefix}/retain-{days}d` roots present in the bucket (SPEC §13).
async fn retention_roots(reader: &Reader, stats: &Stats) -> Result<Vec<String>, QueryError> {
    let root = if reader.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", reader.prefix)
    };
    Stats::add(&stats.requests, 1);
    let page = list_all(
        reader.bucket.as_ref(),
        &format!("{root}retain-"),
        Depth::OneLevel,
    )
    .await?;
    Ok(page
        .dirs
        .into_iter()
        .filter(|d| is_retention_class(d.trim_end_matches('/').rsplit('/').next().unwrap_or("")))
        .map(|d| d.trim_end_matches('/').to_string())
        .collect())
}

fn is_retention_class(name: &str) -> bool {
    name.strip_prefix("retain-")
        .and_then(|r| r.strip_suffix('d'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Keys of one tier under one root that can hold the window.
async fn list_tier(
    reader: &Reader,
    root: &str,
    tier: Tier,
    filter: &Filter,
    now: i64,
    stats: &Stats,
) -> Result<Vec<String>, QueryError> {
    let bucket = reader.bucket.as_ref();
    let list = |prefix: String, depth| async move {
        Stats::add(&stats.requests, 1);
        list_all(bucket, &prefix, depth).await
    };
    let tier_root = layout::key_root(root, tier, filter.ids.project_id.as_deref());
    if layout::per_build(tier) {
        return Ok(list(tier_root, Depth::All)
            .await?
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect());
    }
    let groups = if layout::group_id(tier).is_some() && filter.ids.project_id.is_none() {
        list(tier_root, Depth::OneLevel).await?.dirs
    } else {
        vec![tier_root]
    };
    let days = days(filter, now);
    let mut keys = Vec::new();
    for group in groups {
        if days.end() - days.start() >= MAX_DAY_LISTINGS {
            let all = list(group.clone(), Depth::All).await?;
            keys.extend(
                all.objects
                    .into_iter()
                    .map(|o| o.key)
                    .filter(|k| key_day(&group, k).is_none_or(|d| days.contains(&d))),
            );
            continue;
        }
        for day in days.clone() {
            let page = list(layout::key_day_prefix(&group, day), Depth::All).await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
        }
    }
    Ok(keys)
}

/// The day of `key` below `root` (`{root}YYYY/MM/DD/...`).
fn key_day(root: &str, key: &str) -> Option<i64> {
    let rest = key.strip_prefix(root)?;
    let mut it = rest.splitn(4, '/');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let d = it.next()?.parse().ok()?;
    Some(days_from_civil(y, m, d))
}

/// Local segment files of the tier on the window's days (every day for
/// build/deploy, whose file is dated by the build's first event), with the
/// span of `ts` each holds.
fn local_sources(
    data_dir: &Path,
    filter: &Filter,
    now: i64,
) -> Result<(Vec<Source>, Snapshot), QueryError> {
    let tier = filter.query_tier();
    let root = data_dir.join(layout::tier_root(tier));
    let mut dirs = Vec::new();
    if layout::per_build(tier) {
        dirs.push(root.clone());
    } else {
        for day in days(filter, now) {
            dirs.push(data_dir.join(layout::local_day_dir(tier, day)));
        }
    }
    let mut files = Vec::new();
    for d in dirs {
        walk_ndjson(&d, &mut files).map_err(|source| QueryError::Io {
            path: d.clone(),
            source,
        })?;
    }
    if let (true, Some(id)) = (layout::per_build(tier), filter.ids.build_id.as_deref()) {
        let name = format!("{id}.ndjson");
        files.retain(|f| {
            f.file_name()
                .is_some_and(|n| n.to_str() == Some(name.as_str()))
        });
    }
    let mut snapshot = Snapshot::default();
    let mut out = Vec::new();
    for path in files {
        let Ok(len) = fs::metadata(&path).map(|m| m.len()) else {
            continue;
        };
        let (span, len) = ts_span(&path, len).map_err(|source| QueryError::Io {
            path: path.clone(),
            source,
        })?;
        snapshot.local.insert(path.clone(), len);
        let Some((first, last)) = span else { continue };
        if filter.span_may_match(first, last) {
            out.push(Source {
                origin: Origin::Local { path, len },
                first_ts: first,
                last_ts: last,
            });
        }
    }
    Ok((out, snapshot))
}

fn walk_ndjson(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            walk_ndjson(&p, out)?;
        } else if t.is_file() && p.extension().is_some_and(|x| x == "ndjson") {
            out.push(p);
        }
    }
    Ok(())
}

/// Smallest and largest `ts` of the complete lines in the first `len`
/// bytes of a segment, read from each line's leading `{"ts":N` (the agent
/// writes `ts` first), and the length of those complete lines. The span is
/// `None` for a file without events, and unknown (`MIN..=MAX`) when a line
/// lacks the prefix (the file is then opened first and filtered).
fn ts_span(path: &Path, len: u64) -> std::io::Result<(Option<(i64, i64)>, u64)> {
    let f = fs::File::open(path)?;
    let mut r = BufReader::with_capacity(256 * 1024, f.take(len));
    let (mut lo, mut hi, mut any) = (i64::MAX, i64::MIN, false);
    let (mut complete, mut pos) = (0u64, 0u64);
    let mut line = Vec::new();
    // Only the start of each line is needed: 64 bytes hold any `{"ts":N,`.
    while let Some(end) = next_line(&mut r, &mut line, 64)? {
        pos += end.consumed as u64;
        if !end.terminated {
            break; // still being written: the next read's
        }
        complete = pos;
        match leading_ts(&line) {
            Some(ts) => {
                lo = lo.min(ts);
                hi = hi.max(ts);
                any = true;
            }
            None if line.iter().all(u8::is_ascii_whitespace) => {}
            None => (lo, hi, any) = (i64::MIN, i64::MAX, true),
        }
    }
    Ok((any.then_some((lo, hi)), complete))
}

pub(super) fn leading_ts(line: &[u8]) -> Option<i64> {
    let rest = line.strip_prefix(b"{\"ts\":")?;
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'-'))?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::FilterParams;

    #[test]
    fn days_start_one_before_since_and_end_today() {
        let p = FilterParams {
            tier: Some("system".into()),
            since: Some("2026-01-05T10:00:00Z".into()),
            until: Some("2026-01-06".into()),
            ..Default::default()
        };
        let now = days_from_civil(2026, 1, 9) * DAY_MS + 5;
        let f = Filter::parse_query(&p, now).unwrap();
        let d = days(&f, now);
        assert_eq!(
            (*d.start(), *d.end()),
            (days_from_civil(2026, 1, 4), days_from_civil(2026, 1, 9))
        );
        assert_eq!(
            key_day("system/", "system/2026/01/04/h-U.ndjson.gz"),
            Some(days_from_civil(2026, 1, 4))
        );
        assert!(
            is_retention_class("retain-30d")
                && !is_retention_class("retain-d")
                && !is_retention_class("retainx")
        );
    }

    #[test]
    fn ts_span_reads_line_prefixes_up_to_len() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.ndjson");
        let long = "x".repeat(300_000);
        let text = format!(
            "{{\"ts\":50,\"a\":1}}\n{{\"ts\":7,\"m\":\"{long}\"}}\n{{\"ts\":90}}\n{{\"ts\":1}}\n"
        );
        fs::write(&p, &text).unwrap();
        let n = text.len() as u64;
        assert_eq!(ts_span(&p, n).unwrap(), (Some((1, 90)), n));
        let cut = n - 2; // inside the last line: it is not counted yet
        assert_eq!(
            ts_span(&p, cut).unwrap(),
            (Some((7, 90)), n - "{\"ts\":1}\n".len() as u64)
        );
        fs::write(&p, "not json\n").unwrap();
        assert_eq!(ts_span(&p, 9).unwrap(), (Some((i64::MIN, i64::MAX)), 9));
        fs::write(&p, "").unwrap();
        assert_eq!(ts_span(&p, 0).unwrap(), (None, 0));
    }
}
