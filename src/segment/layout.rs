//! The one place that turns a tier, ids and a day into a local path and an
//! object key (SPEC §2, §3). Ids reach here already made safe by
//! [`crate::event::path_component`].

use std::path::PathBuf;

use crate::event::Tier;
use crate::normalize::time::civil_from_days;

/// Which open segment an event goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub tier: Tier,
    /// The id component (`projectId` or `buildId`), for tiers keyed by one.
    pub group: Option<String>,
    /// UTC day number; 0 for build/deploy, whose file spans days.
    pub day: i64,
}

/// Which id a tier's layout is keyed on.
pub fn group_id(tier: Tier) -> Option<&'static str> {
    match tier {
        Tier::System => None,
        Tier::Build | Tier::Deploy => Some("buildId"),
        Tier::Action | Tier::Lifecycle => Some("projectId"),
    }
}

/// Build/deploy segments are one file per build, not rotated by time.
pub fn per_build(tier: Tier) -> bool {
    matches!(tier, Tier::Build | Tier::Deploy)
}

fn dashed(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn slashed(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}/{m:02}/{d:02}")
}

/// Local path of a segment, relative to `data_dir`.
pub fn local_path(tier: Tier, group: &str, day: i64, instance: &str, ulid: &str) -> PathBuf {
    let date = dashed(day);
    PathBuf::from(match tier {
        Tier::System => format!("system/{date}/{instance}-{ulid}.ndjson"),
        Tier::Build => format!("builds/{date}/{group}.ndjson"),
        Tier::Deploy => format!("deploys/{date}/{group}.ndjson"),
        Tier::Action => format!("projects/{date}/{group}/{instance}-{ulid}.ndjson"),
        Tier::Lifecycle => format!("lifecycle/{date}/{group}/{instance}-{ulid}.ndjson"),
    })
}

/// Object key of a sealed segment, with the bucket prefix (already trimmed
/// of slashes) in front when set.
pub fn object_key(
    prefix: &str,
    tier: Tier,
    group: &str,
    day: i64,
    instance: &str,
    ulid: &str,
) -> String {
    let date = slashed(day);
    let key = match tier {
        Tier::System => format!("system/{date}/{instance}-{ulid}.ndjson.gz"),
        Tier::Build => format!("builds/{group}.ndjson.gz"),
        Tier::Deploy => format!("deploys/{group}.ndjson.gz"),
        Tier::Action => format!("projects/{group}/{date}/{instance}-{ulid}.ndjson.gz"),
        Tier::Lifecycle => format!("lifecycle/{group}/{date}/{instance}-{ulid}.ndjson.gz"),
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    }
}

/// The top-level directory (local) and key component (bucket) of a tier.
pub fn tier_root(tier: Tier) -> &'static str {
    match tier {
        Tier::System => "system",
        Tier::Build => "builds",
        Tier::Deploy => "deploys",
        Tier::Action => "projects",
        Tier::Lifecycle => "lifecycle",
    }
}

fn with_prefix(prefix: &str, key: String) -> String {
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    }
}

/// The key prefix under which the tier's objects live (ends in `/`); for
/// tiers keyed by a group, `group` narrows it to one group.
pub fn key_root(prefix: &str, tier: Tier, group: Option<&str>) -> String {
    let root = tier_root(tier);
    with_prefix(
        prefix,
        match group {
            Some(g) if group_id(tier).is_some() => format!("{root}/{g}/"),
            _ => format!("{root}/"),
        },
    )
}

/// The key prefix of one UTC day's objects below a [`key_root`] (which
/// ends in `/`). Build/deploy keys carry no day: callers list their root.
pub fn key_day_prefix(root: &str, day: i64) -> String {
    format!("{root}{}/", slashed(day))
}

/// The one object of a build/deploy (`builds/{id}.ndjson.gz`).
pub fn build_key(prefix: &str, tier: Tier, build_id: &str) -> String {
    object_key(prefix, tier, build_id, 0, "", "")
}

/// The local directory of one UTC day's segments, relative to `data_dir`.
pub fn local_day_dir(tier: Tier, day: i64) -> PathBuf {
    PathBuf::from(tier_root(tier)).join(dashed(day))
}

/// Top-level local directories that hold segments.
pub const LOCAL_ROOTS: [&str; 5] = ["system", "builds", "deploys", "projects", "lifecycle"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::time::days_from_civil;

    #[test]
    fn read_side_prefixes_match_the_keys() {
        let day = days_from_civil(2026, 1, 2);
        let key = object_key("logs", Tier::Action, "p1", day, "h1", "U");
        let root = key_root("logs", Tier::Action, Some("p1"));
        assert!(key.starts_with(&key_day_prefix(&root, day)), "{key}");
        let key = object_key("", Tier::System, "", day, "h1", "U");
        assert!(key.starts_with(&key_day_prefix(&key_root("", Tier::System, None), day)));
        assert_eq!(build_key("", Tier::Deploy, "b7"), "deploys/b7.ndjson.gz");
        assert!(local_path(Tier::Lifecycle, "p", day, "h", "U")
            .starts_with(local_day_dir(Tier::Lifecycle, day)));
    }

    #[test]
    fn paths_and_keys_follow_the_spec() {
        let day = days_from_civil(2026, 1, 2);
        let u = "01JABC";
        assert_eq!(
            local_path(Tier::System, "", day, "h1", u),
            PathBuf::from("system/2026-01-02/h1-01JABC.ndjson")
        );
        assert_eq!(
            object_key("", Tier::System, "", day, "h1", u),
            "system/2026/01/02/h1-01JABC.ndjson.gz"
        );
        assert_eq!(
            local_path(Tier::Build, "b7", day, "h1", u),
            PathBuf::from("builds/2026-01-02/b7.ndjson")
        );
        assert_eq!(
            object_key("logs", Tier::Build, "b7", day, "h1", u),
            "logs/builds/b7.ndjson.gz"
        );
        assert_eq!(
            object_key("", Tier::Deploy, "b7", day, "h1", u),
            "deploys/b7.ndjson.gz"
        );
        assert_eq!(
            local_path(Tier::Action, "p1", day, "h1", u),
            PathBuf::from("projects/2026-01-02/p1/h1-01JABC.ndjson")
        );
        assert_eq!(
            object_key("", Tier::Action, "p1", day, "h1", u),
            "projects/p1/2026/01/02/h1-01JABC.ndjson.gz"
        );
        assert_eq!(
            object_key("", Tier::Lifecycle, "_none", day, "h1", u),
            "lifecycle/_none/2026/01/02/h1-01JABC.ndjson.gz"
        );
    }
}
