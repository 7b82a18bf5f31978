//! Retention by level (SPEC §13): how many days each level's events stay
//! in the bucket, and the object layout that lets the store expire them.
//!
//! Levels with the same days form one *class*; a sealed segment becomes one
//! object per class that it holds events of, each under
//! `{prefix}/retain-{days}d/` followed by the segment's §3 key, so one
//! prefix lifecycle rule per class expires them (`s3`/`r2`), and the `dir`
//! bucket prunes each `retain-{days}d/` tree by the age its name says
//! ([`crate::ship::dir::DirBucket::prune_classes`]).
//!
//! The rule of a class that is no longer configured is left in place on
//! purpose: the objects written under it still need to expire.

use crate::event::Level;
use crate::ship::s3::LifecycleRule;

/// The longest retention a class may ask for (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// Days per level, validated: every level has between 1 and
/// [`MAX_DAYS`] days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classes {
    /// Indexed by [`Level::index`].
    days: [u32; 4],
}

/// Why `[bucket.retention]` cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("bucket.retention.{0} is missing; give days for every level (debug, info, warn, error), e.g. debug = 1, info = 7, warn = 14, error = 30")]
    Missing(&'static str),
    #[error("bucket.retention.{0} = {1} is out of range; days must be between 1 and {MAX_DAYS}")]
    Range(&'static str, u32),
}

impl Classes {
    /// From the days given per level (`None`: not given).
    pub fn new(days: [Option<u32>; 4]) -> Result<Classes, RetentionError> {
        let mut out = [0; 4];
        for (i, d) in days.into_iter().enumerate() {
            let name = Level::ALL[i].as_str();
            let d = d.ok_or(RetentionError::Missing(name))?;
            if d == 0 || d > MAX_DAYS {
                return Err(RetentionError::Range(name, d));
            }
            out[i] = d;
        }
        Ok(Classes { days: out })
    }

    /// The days of `lvl`'s class.
    pub fn days(&self, lvl: Level) -> u32 {
        self.days[lvl.index()]
    }

    /// The distinct classes, shortest first.
    pub fn distinct(&self) -> Vec<u32> {
        let mut d = self.days.to_vec();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// One expiration rule per class, under `key_prefix` (trimmed of
    /// slashes), with ids `logship:{class root}`.
    pub fn lifecycle_rules(&self, key_prefix: &str) -> Vec<LifecycleRule> {
        self.distinct()
            .into_iter()
            .map(|days| {
                let prefix = class_root(key_prefix, days);
                LifecycleRule {
                    id: format!("logship:{prefix}"),
                    prefix,
                    days,
                }
            })
            .collect()
    }

    /// `debug=1d info=7d ...`, for logs.
    pub fn describe(&self) -> String {
        Level::ALL
            .iter()
            .map(|l| format!("{}={}d", l.as_str(), self.days(*l)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The name of a class's first key component: `retain-{days}d`.
pub fn class_dir(days: u32) -> String {
    format!("retain-{days}d")
}

/// `{prefix}/retain-{days}d/` (no prefix: `retain-{days}d/`).
pub fn class_root(key_prefix: &str, days: u32) -> String {
    match key_prefix {
        "" => format!("{}/", class_dir(days)),
        p => format!("{p}/{}/", class_dir(days)),
    }
}

/// The key of a segment's `days` class object, from its §3 `key` (which
/// starts with `key_prefix/` when a prefix is set).
pub fn class_key(key_prefix: &str, days: u32, key: &str) -> String {
    let rest = match key_prefix {
        "" => key,
        p => key
            .strip_prefix(p)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(key),
    };
    format!("{}{rest}", class_root(key_prefix, days))
}

/// The days a class directory name stands for: `retain-7d` -> 7.
pub fn parse_class_dir(name: &str) -> Option<u32> {
    name.strip_prefix("retain-")?
        .strip_suffix('d')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_group_levels_by_days() {
        let c = Classes::new([Some(1), Some(7), Some(7), Some(30)]).unwrap();
        assert_eq!(c.distinct(), [1, 7, 30]);
        assert_eq!(c.days(Level::Warn), 7);
        let rules = c.lifecycle_rules("fleet");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[1].prefix, "fleet/retain-7d/");
        assert_eq!(rules[1].id, "logship:fleet/retain-7d/");
        assert_eq!(rules[2].days, 30);
        assert_eq!(c.lifecycle_rules("")[0].prefix, "retain-1d/");
        assert_eq!(
            Classes::new([Some(1), None, Some(2), Some(3)]),
            Err(RetentionError::Missing("info"))
        );
        assert_eq!(
            Classes::new([Some(0), Some(1), Some(2), Some(3)]),
            Err(RetentionError::Range("debug", 0))
        );
    }

    #[test]
    fn class_keys_go_after_the_prefix() {
        assert_eq!(
            class_key("", 7, "system/2026/01/02/h-x.ndjson.gz"),
            "retain-7d/system/2026/01/02/h-x.ndjson.gz"
        );
        assert_eq!(
            class_key("a/b", 30, "a/b/builds/b1.ndjson.gz"),
            "a/b/retain-30d/builds/b1.ndjson.gz"
        );
        assert_eq!(parse_class_dir("retain-14d"), Some(14));
        assert_eq!(parse_class_dir("retain-d"), None);
        assert_eq!(parse_class_dir("retain-1x"), None);
    }
}
