//! What a reader asks for: the filters of `logship query`, `/api/query` and
//! `/api/tail` (SPEC §10), parsed once into a [`Filter`].
//!
//! The CLI's flags and the API's query parameters carry the same names
//! (`--build-id` / `buildId`), so both fill one [`FilterParams`] of raw
//! strings and share one parser: a bad value gets the same message from
//! either. The time window is half-open, `[since, until)`.

use regex::Regex;

use super::QueryError;
use crate::event::{Event, Level, Tier};
use crate::normalize::time::parse_rfc3339;

/// Filters as the user typed them.
#[derive(Clone, Debug, Default)]
pub struct FilterParams {
    pub tier: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub kind: Option<String>,
    pub lvl: Option<String>,
    pub src: Option<String>,
    pub instance_id: Option<String>,
    pub project_id: Option<String>,
    pub build_id: Option<String>,
    pub user_id: Option<String>,
    pub req_id: Option<String>,
    pub grep: Option<String>,
    pub limit: Option<String>,
}

impl FilterParams {
    /// From URL query parameters (names as in SPEC §10: `buildId`, ...).
    /// Unknown parameters are an error, so a typo does not silently widen
    /// the answer.
    pub fn from_query(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, QueryError> {
        let mut p = FilterParams::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "tier" => &mut p.tier,
                "since" => &mut p.since,
                "until" => &mut p.until,
                "kind" => &mut p.kind,
                "lvl" => &mut p.lvl,
                "src" => &mut p.src,
                "instanceId" => &mut p.instance_id,
                "projectId" => &mut p.project_id,
                "buildId" => &mut p.build_id,
                "userId" => &mut p.user_id,
                "reqId" => &mut p.req_id,
                "grep" => &mut p.grep,
                "limit" => &mut p.limit,
                _ => return Err(QueryError::UnknownParam(k)),
            };
            *slot = Some(v).filter(|v| !v.is_empty());
        }
        Ok(p)
    }
}

/// Equality on one id field; `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    pub kind: Option<String>,
    pub src: Option<String>,
    pub instance_id: Option<String>,
    pub project_id: Option<String>,
    pub build_id: Option<String>,
    pub user_id: Option<String>,
    pub req_id: Option<String>,
}

/// A parsed filter.
#[derive(Clone, Debug)]
pub struct Filter {
    /// `None` only for live tails, which may span tiers.
    pub tier: Option<Tier>,
    /// Inclusive, epoch ms.
    pub since: i64,
    /// Exclusive, epoch ms.
    pub until: i64,
    pub min_lvl: Option<Level>,
    pub ids: Ids,
    pub grep: Option<Regex>,
    pub limit: Option<u64>,
}

/// Most bytes of a `grep` pattern (a hostile pattern stays small).
const MAX_GREP: usize = 4096;
/// Compiled size limit of a `grep` regex.
const GREP_SIZE_LIMIT: usize = 1 << 20;

impl Filter {
    /// Parse `p` at wall-clock `now` (for ages such as `2h`). A query needs
    /// `tier` and `since`; a tail ([`Filter::live`]) needs neither.
    pub fn parse(p: &FilterParams, now: i64) -> Result<Filter, QueryError> {
        let tier = match &p.tier {
            Some(t) => Some(Tier::parse(t).ok_or_else(|| QueryError::BadTier(t.clone()))?),
            None => None,
        };
        let since = match &p.since {
            Some(s) => parse_time(s, now)?,
            None => i64::MIN,
        };
        let until = match &p.until {
            Some(u) => parse_time(u, now)?,
            None => i64::MAX,
        };
        let min_lvl = match &p.lvl {
            Some(l) => Some(Level::parse(l).ok_or_else(|| QueryError::BadLevel(l.clone()))?),
            None => None,
        };
        let grep = match &p.grep {
            Some(g) if g.len() > MAX_GREP => {
                return Err(QueryError::BadGrep(format!(
                    "pattern longer than {MAX_GREP} bytes"
                )))
            }
            Some(g) => Some(
                regex::RegexBuilder::new(g)
                    .size_limit(GREP_SIZE_LIMIT)
                    .build()
                    .map_err(|e| QueryError::BadGrep(e.to_string()))?,
            ),
            None => None,
        };
        let limit = match &p.limit {
            Some(l) => Some(
                l.parse::<u64>()
                    .map_err(|_| QueryError::BadLimit(l.clone()))?,
            ),
            None => None,
        };
        Ok(Filter {
            tier,
            since,
            until,
            min_lvl,
            ids: Ids {
                kind: p.kind.clone(),
                src: p.src.clone(),
                instance_id: p.instance_id.clone(),
                project_id: p.project_id.clone(),
                build_id: p.build_id.clone(),
                user_id: p.user_id.clone(),
                req_id: p.req_id.clone(),
            },
            grep,
            limit,
        })
    }

    /// As [`Filter::parse`], for a query over stored events: `tier` and
    /// `since` are required, `until` defaults to just after `now`.
    pub fn parse_query(p: &FilterParams, now: i64) -> Result<Filter, QueryError> {
        let mut f = Filter::parse(p, now)?;
        if f.tier.is_none() {
            return Err(QueryError::Missing("tier"));
        }
        if p.since.is_none() {
            return Err(QueryError::Missing("since"));
        }
        if p.until.is_none() {
            f.until = now + 1;
        }
        Ok(f)
    }

    /// The tier of a query (set by [`Filter::parse_query`]).
    pub fn query_tier(&self) -> Tier {
        self.tier.unwrap_or(Tier::System)
    }

    /// Whether `e` passes every condition, the time window included.
    pub fn keep(&self, e: &Event) -> bool {
        e.ts >= self.since && e.ts < self.until && self.keep_fields(e)
    }

    /// Every condition but the time window (live tails ignore it).
    pub fn keep_fields(&self, e: &Event) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let i = &self.ids;
        self.tier.is_none_or(|t| e.tier == t)
            && self.min_lvl.is_none_or(|l| e.lvl >= l)
            && eq(&i.kind, Some(&e.kind))
            && eq(&i.src, Some(&e.src))
            && eq(&i.instance_id, Some(&e.instance_id))
            && eq(&i.project_id, e.project_id.as_deref())
            && eq(&i.build_id, e.build_id.as_deref())
            && eq(&i.user_id, e.user_id.as_deref())
            && eq(&i.req_id, e.req_id.as_deref())
            && self.grep.as_ref().is_none_or(|r| r.is_match(&e.msg))
    }

    /// Whether events spanning `[first, last]` (inclusive) can meet the window.
    pub fn span_may_match(&self, first: i64, last: i64) -> bool {
        last >= self.since && first < self.until
    }
}

/// A time argument: RFC 3339 (milliseconds honoured), a date (UTC
/// midnight), epoch ms, or an age before `now` (`2h`, `3d`).
pub fn parse_time(s: &str, now: i64) -> Result<i64, QueryError> {
    let t = s.trim();
    if let Some((ms, used)) = parse_rfc3339(t.as_bytes()) {
        if used == t.len() {
            return Ok(ms);
        }
    }
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    }
    if t.len() == 10 {
        if let Some((ms, _)) = parse_rfc3339(format!("{t}T00:00:00Z").as_bytes()) {
            return Ok(ms);
        }
    }
    Err(QueryError::BadTime(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_795_319_384_000;
        assert_eq!(parse_time("2026-11-22T03:49:44Z", now).unwrap(), now);
        assert_eq!(
            parse_time("2026-11-22T03:49:44.123Z", now).unwrap(),
            now + 123
        );
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("123", now).unwrap(), 123);
        assert_eq!(
            parse_time("2026-11-22", now).unwrap(),
            now - (3 * 3600 + 49 * 60 + 44) * 1000
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }

    #[test]
    fn window_is_half_open_and_fields_must_all_hold() {
        let p = FilterParams {
            tier: Some("build".into()),
            since: Some("100".into()),
            until: Some("200".into()),
            lvl: Some("warn".into()),
            build_id: Some("b1".into()),
            grep: Some("fail(ed)?".into()),
            ..Default::default()
        };
        let f = Filter::parse_query(&p, 1000).unwrap();
        let mut e = Event::empty(Tier::Build);
        e.lvl = Level::Error;
        e.build_id = Some("b1".into());
        e.msg = "it failed".into();
        for (ts, want) in [(99, false), (100, true), (199, true), (200, false)] {
            e.ts = ts;
            assert_eq!(f.keep(&e), want, "ts {ts}");
        }
        e.ts = 150;
        e.lvl = Level::Info;
        assert!(!f.keep(&e));
        e.lvl = Level::Warn;
        e.build_id = Some("b2".into());
        assert!(!f.keep(&e));
        assert!(
            f.span_may_match(50, 100) && !f.span_may_match(50, 99) && !f.span_may_match(200, 300)
        );
    }

    #[test]
    fn api_params_are_checked() {
        let q = |k: &str, v: &str| FilterParams::from_query([(k.to_string(), v.to_string())]);
        assert!(matches!(
            q("buildid", "x"),
            Err(QueryError::UnknownParam(_))
        ));
        assert_eq!(q("buildId", "x").unwrap().build_id.as_deref(), Some("x"));
        assert!(Filter::parse(&q("lvl", "loud").unwrap(), 0).is_err());
        assert!(Filter::parse_query(&q("tier", "system").unwrap(), 0).is_err());
    }
}
