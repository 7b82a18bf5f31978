//! The one place that turns a tier, ids and a day into a local path and an
//! object key (SPEC §2, §3). Ids reach here already made safe by
//! [`crate::event::path_component`].

use std::path::PathBuf;

use crate::event::{IdField, Tier};
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
pub fn group_id(tier: Tier) -> Option<IdField> {
    match tier {
        Tier::System => None,
        Tier::Build | Tier::Deploy => Some(IdField::BuildId),
        Tier::Action | Tier::Lifecycle => Some(IdField::ProjectId),
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

/// Top-level local directories that hold segments.
pub const LOCAL_ROOTS: [&str; 5] = ["system", "builds", "deploys", "projects", "lifecycle"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::time::days_from_civil;

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
