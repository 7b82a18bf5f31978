//! Retention by level (SPEC §13), black-box: with `[bucket.retention]` each
//! sealed segment lands as one object per class under
//! `retain-{days}d/<§3 key>`, holding only that class's levels, with
//! metadata describing its own events; `query` returns exactly what it
//! returns for the same input without classes; on S3 (Garage) one
//! lifecycle rule per class exists beside the operator's own; a `dir`
//! bucket prunes class trees by age.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use logship::event::{Event, Level};
use support::agent::{append, assert_exactly_once, Agent, Writer};
use support::garage::Garage;
use support::read::{assert_same, now_ms, query};

const RETENTION: &str = "[bucket.retention]\ndebug = 1\ninfo = 7\nwarn = 7\nerror = 30\n";

fn days_of(l: Level) -> u32 {
    match l {
        Level::Debug => 1,
        Level::Info | Level::Warn => 7,
        Level::Error => 30,
    }
}

/// System and build lines of every level, with their own timestamps (so
/// two agents fed the same lines write the same events).
fn corpus(t0: i64) -> (Vec<String>, Vec<String>) {
    let levels = ["debug", "info", "warn", "error"];
    let system = (0..600)
        .map(|i| {
            format!(
                r#"{{"time":{},"level":"{}","msg":"system {i:04}"}}"#,
                t0 + i as i64 * 7,
                levels[(i * 7 + i / 5) % 4]
            )
        })
        .collect();
    let builds = (0..90)
        .map(|i| {
            format!(
                r#"{{"time":{},"level":"{}","buildId":"b-{}","msg":"build {i:04}"}}"#,
                t0 + i as i64 * 11,
                levels[(i / 3) % 4],
                i % 3
            )
        })
        .collect();
    (system, builds)
}

fn sources() -> &'static str {
    r#"
[[sources]]
name = "app"
include = ["{logs}/app.log"]

[[sources]]
name = "builds"
include = ["{logs}/build.log"]
tier = "build"
"#
}

/// Feed `corpus` to an agent with `bucket` config, stop it (seal + upload).
fn run_agent(bucket: &str, t0: i64) -> Agent {
    let mut a = Agent::with("max_bytes = \"8KiB\"", &format!("{}\n{bucket}", sources()));
    let (system, builds) = corpus(t0);
    append(&a.logs().join("app.log"), &system);
    append(&a.logs().join("build.log"), &builds);
    a.start();
    a.wait_local(system.len() + builds.len());
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    a
}

/// A config that reads `bucket` only (an empty data_dir), for `query`.
fn reader_config(dir: &Path, bucket: &str) -> std::path::PathBuf {
    let p = dir.join("reader.toml");
    std::fs::write(
        &p,
        format!(
            "[agent]\ninstance_id = \"test-host\"\ndata_dir = \"{}\"\n{bucket}\n[metrics]\nenabled = false\n",
            dir.join("empty").display()
        ),
    )
    .unwrap();
    p
}

/// Two agents fed the same files may read them in another order, so their
/// `seq` differ; everything else must be the same.
fn without_seq(events: Vec<Event>) -> Vec<Event> {
    events.into_iter().map(|e| Event { seq: 0, ..e }).collect()
}

fn query_all(config: &Path, t0: i64) -> Vec<Event> {
    let mut all = Vec::new();
    for tier in ["system", "build"] {
        let (ev, _) = query(
            config,
            &[
                "--tier".into(),
                tier.into(),
                "--since".into(),
                (t0 - 1000).to_string(),
            ],
        );
        all.extend(without_seq(ev));
    }
    all
}

/// Every class object holds only its class's levels, under its class's
/// key; its metadata describes its own events; together they hold each
/// event once.
fn check_class_objects(objects: &BTreeMap<String, (Vec<Event>, BTreeMap<String, String>)>) {
    let mut seen = BTreeSet::new();
    let mut classes = BTreeSet::new();
    for (key, (events, meta)) in objects {
        let class = key
            .split('/')
            .find(|c| c.starts_with("retain-"))
            .unwrap_or_else(|| panic!("object {key} is not under a retention class"));
        classes.insert(class.to_string());
        assert!(!events.is_empty(), "{key} is empty");
        for e in events {
            assert_eq!(
                class,
                format!("retain-{}d", days_of(e.lvl)),
                "{key} holds a {:?} event",
                e.lvl
            );
            assert!(
                seen.insert((e.instance_id.clone(), e.seq)),
                "{:?} twice",
                e.seq
            );
        }
        let first = events.iter().map(|e| e.ts).min().unwrap();
        let last = events.iter().map(|e| e.ts).max().unwrap();
        assert_eq!(meta["first-ts"], first.to_string(), "{key}");
        assert_eq!(meta["last-ts"], last.to_string(), "{key}");
        assert_eq!(meta["lines"], events.len().to_string(), "{key}");
    }
    assert_eq!(
        classes,
        ["retain-1d", "retain-30d", "retain-7d"]
            .map(String::from)
            .into()
    );
}

fn dir_objects(bucket: &Path) -> BTreeMap<String, (Vec<Event>, BTreeMap<String, String>)> {
    let mut out = BTreeMap::new();
    for f in support::agent::files_under(bucket) {
        let key = f
            .strip_prefix(bucket)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if key.starts_with(".meta/") || !key.ends_with(".ndjson.gz") {
            continue;
        }
        let raw = support::read::gunzip(&std::fs::read(&f).unwrap());
        let meta_path = bucket.join(".meta").join(format!("{key}.json"));
        let meta: BTreeMap<String, String> =
            serde_json::from_slice(&std::fs::read(meta_path).unwrap()).unwrap();
        out.insert(key, (support::agent::parse_lines(&raw), meta));
    }
    out
}

#[test]
fn dir_bucket_objects_split_by_class_and_query_reads_them_the_same() {
    let t0 = now_ms() - 60_000;
    let plain = run_agent("", t0);
    let classed = run_agent(RETENTION, t0);
    let objects = dir_objects(&classed.bucket());
    check_class_objects(&objects);
    // Build objects keep their §3 key below the class.
    assert!(
        objects.contains_key("retain-30d/builds/b-0.ndjson.gz"),
        "{:?}",
        objects.keys()
    );
    // The plain layout is unchanged without [bucket.retention].
    assert!(dir_objects(&plain.bucket())
        .keys()
        .all(|k| !k.starts_with("retain-")));

    // The same events, in the same order, through `query` on both layouts
    // (bucket only: the readers' data_dir is empty).
    let dir = tempfile::tempdir().unwrap();
    let (pd, cd) = (dir.path().join("p"), dir.path().join("c"));
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::create_dir_all(&cd).unwrap();
    let bucket_cfg = |a: &Agent| {
        format!(
            "[bucket]\nkind = \"dir\"\npath = \"{}\"\n",
            a.bucket().display()
        )
    };
    let want = query_all(&reader_config(&pd, &bucket_cfg(&plain)), t0);
    assert_eq!(want.len(), 690);
    let got = query_all(
        &reader_config(&cd, &format!("{}{RETENTION}", bucket_cfg(&classed))),
        t0,
    );
    assert_same("query over retention classes", &got, &want);
    // A reader without [bucket.retention] finds the classes too.
    let got = query_all(&reader_config(&cd, &bucket_cfg(&classed)), t0);
    assert_same(
        "query over retention classes, reader without retention",
        &got,
        &want,
    );
    // And a build's events by its id.
    let (by_build, _) = query(
        &reader_config(&cd, &format!("{}{RETENTION}", bucket_cfg(&classed))),
        &[
            "--tier".into(),
            "build".into(),
            "--build-id".into(),
            "b-1".into(),
            "--since".into(),
            (t0 - 1000).to_string(),
        ],
    );
    assert_eq!(by_build.len(), 30);
}

#[test]
fn s3_objects_split_by_class_with_one_lifecycle_rule_per_class() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    // The operator's own rule, which logship must leave alone.
    g.apply_lifecycle(vec![logship::ship::s3::LifecycleRule {
        id: "ops-tmp".into(),
        prefix: "tmp/".into(),
        days: 2,
    }]);
    let bucket = format!(
        "[bucket]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"fleet\"\nretry_initial = \"50ms\"\n",
        g.endpoint, g.region, g.bucket, g.access_key, g.secret_key
    );
    let t0 = now_ms() - 60_000;
    let a = run_agent(&format!("{bucket}{RETENTION}"), t0);
    let rules = g.lifecycle();
    assert_eq!(rules["ops-tmp"], ("tmp/".to_string(), 2), "{rules:?}");
    for days in [1, 7, 30] {
        let id = format!("logship:fleet/retain-{days}d/");
        assert_eq!(
            rules[&id],
            (format!("fleet/retain-{days}d/"), days),
            "{rules:?}"
        );
    }
    assert_eq!(rules.len(), 4, "{rules:?}");
    let mut objects = BTreeMap::new();
    for key in g.list().keys() {
        assert!(key.starts_with("fleet/retain-"), "{key}");
        let o = g.get(key).unwrap();
        let events = support::agent::parse_lines(&support::read::gunzip(&o.bytes));
        let meta = o.metadata.into_iter().collect();
        objects.insert(key.clone(), (events, meta));
    }
    check_class_objects(&objects);
    // query over S3 returns what the agent wrote locally.
    let dir = tempfile::tempdir().unwrap();
    let got = query_all(&reader_config(dir.path(), &bucket), t0);
    let mut want = without_seq(a.local_events());
    want.sort_by_key(|e| (e.tier, e.ts, e.msg.clone()));
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|e| (e.tier, e.ts, e.msg.clone()));
    assert_same("query over S3 retention classes", &got_sorted, &want);
}

#[test]
fn the_dir_bucket_prunes_class_trees_by_age() {
    let mut a = Agent::with("", &format!("{}\n{RETENTION}", sources()));
    let bucket = a.bucket();
    let old_class = bucket.join("retain-1d/system/2020/01/01/h-old.ndjson.gz");
    let young_class = bucket.join("retain-30d/system/2020/01/01/h-old.ndjson.gz");
    let plain = bucket.join("system/2020/01/01/h-old.ndjson.gz");
    for p in [&old_class, &young_class, &plain] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, support::read::gzip(b"{}\n")).unwrap();
        // Stored three days ago.
        let status = std::process::Command::new("touch")
            .args(["-d", "3 days ago"])
            .arg(p)
            .status()
            .unwrap();
        assert!(status.success());
    }
    a.start();
    a.wait_until("the 1-day class pruned", Duration::from_secs(30), |_| {
        !old_class.exists()
    });
    assert!(
        young_class.exists(),
        "a 30-day class object of 3 days stays"
    );
    assert!(
        plain.exists(),
        "objects outside the classes are never pruned"
    );
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
}

#[test]
fn kill_9_during_class_uploads_leaves_every_event_once() {
    let mut a = Agent::with(
        "max_bytes = \"16KiB\"",
        &format!("[[sources]]\nname = \"app\"\ninclude = [\"{{logs}}/*.log\"]\n{RETENTION}"),
    );
    let debug = Writer::spawn(
        a.logs().join("d.log"),
        "DEBUG d",
        30,
        Duration::from_millis(10),
    );
    let error = Writer::spawn(
        a.logs().join("e.log"),
        "ERROR e",
        10,
        Duration::from_millis(10),
    );
    let info = Writer::spawn(a.logs().join("i.log"), "i", 20, Duration::from_millis(10));
    a.start();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(600));
        a.kill9();
        a.start();
    }
    let all = [debug.stop(), error.stop(), info.stop()].concat();
    a.wait_local(all.len());
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    let objects = dir_objects(&a.bucket());
    assert_exactly_once(
        &objects
            .values()
            .flat_map(|(e, _)| e.clone())
            .collect::<Vec<_>>(),
        &all,
    );
    check_class_objects_present(&objects, &["retain-1d", "retain-30d", "retain-7d"]);
}

#[test]
fn a_reload_changes_the_classes_of_segments_sealed_from_then_on() {
    let config = |retention: &str| {
        format!("[[sources]]\nname = \"app\"\ninclude = [\"{{logs}}/*.log\"]\n{retention}")
    };
    let mut a = Agent::with("max_bytes = \"1KiB\"", &config(RETENTION));
    a.start();
    let log = a.logs().join("app.log");
    let first = support::agent::numbered("ERROR first", 0..50);
    append(&log, &first);
    a.wait_until("the first objects", Duration::from_secs(30), |a| {
        a.bucket_objects()
            .keys()
            .any(|k| k.starts_with("retain-30d/"))
    });
    let text = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(&a.config, text.replace("error = 30", "error = 90")).unwrap();
    a.wait_until("the reload", Duration::from_secs(30), |a| {
        a.stderr().contains("bucket.retention changed")
    });
    let second = support::agent::numbered("ERROR second", 0..50);
    append(&log, &second);
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    let objects = a.bucket_objects();
    let class_of = |k: &String| k.split('/').next().unwrap().to_string();
    // Segments sealed before the reload kept the old class; every segment
    // holding a line written after it was sealed after it: the new class.
    assert!(objects.iter().any(|(k, ev)| class_of(k) == "retain-30d"
        && ev.iter().any(|e| e.msg.starts_with("ERROR first"))));
    for (key, events) in &objects {
        if events.iter().any(|e| e.msg.starts_with("ERROR second")) {
            assert_eq!(class_of(key), "retain-90d", "{key}");
        }
    }
    let second_classes: BTreeSet<&str> = objects
        .iter()
        .filter(|(_, ev)| ev.iter().any(|e| e.msg == second[49]))
        .map(|(k, _)| k.split('/').next().unwrap())
        .collect();
    assert_eq!(second_classes, ["retain-90d"].into());
    assert_exactly_once(
        &objects.into_values().flatten().collect::<Vec<_>>(),
        &[first, second].concat(),
    );
}

fn check_class_objects_present(
    objects: &BTreeMap<String, (Vec<Event>, BTreeMap<String, String>)>,
    want: &[&str],
) {
    check_class_objects_levels(objects);
    let classes: BTreeSet<&str> = objects
        .keys()
        .map(|k| k.split('/').next().unwrap())
        .collect();
    assert_eq!(classes, want.iter().copied().collect());
}

/// Each object holds only its class's levels and its metadata describes it.
fn check_class_objects_levels(objects: &BTreeMap<String, (Vec<Event>, BTreeMap<String, String>)>) {
    for (key, (events, meta)) in objects {
        let class = key.split('/').next().unwrap();
        for e in events {
            assert_eq!(class, format!("retain-{}d", days_of(e.lvl)), "{key}");
        }
        assert_eq!(meta["lines"], events.len().to_string(), "{key}");
    }
}
