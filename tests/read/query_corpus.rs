//! `logship query` against ground truth: a five-day corpus (three
//! instances, system/action/build tiers, segments out of `ts` order, a
//! backlog filed days late, uploaded segments still on disk, an open local
//! segment) written into a directory bucket and into Garage; every filter
//! and window edge compared set-for-set and order-for-order with what the
//! corpus says. `--build-id` is answered from one GET (counted at a proxy).

use std::path::Path;
use std::sync::Arc;

use logship::event::{Event, Level};
use logship::ship::{dir::DirBucket, s3::S3Bucket, Bucket};

use crate::support::garage::Garage;
use crate::support::read::{assert_same, query, today, Corpus, DAY, Q};
use crate::support::s3_proxy::{Faults, Proxy};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn dir_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\ninstance_id = \"reader\"\ndata_dir = \"{}\"\n[bucket]\nkind = \"dir\"\npath = \"{}\"\n[metrics]\nenabled = false\n",
            dir.join("data").display(),
            dir.join("bucket").display()
        ),
    )
    .unwrap();
    cfg
}

fn s3_config(dir: &Path, g: &Garage, endpoint: &str) -> std::path::PathBuf {
    let cfg = dir.join(format!(
        "agent-{}.toml",
        endpoint.rsplit(':').next().unwrap_or("x")
    ));
    std::fs::write(
        &cfg,
        format!(
            "[agent]\ninstance_id = \"reader\"\ndata_dir = \"{}\"\n[bucket]\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n[metrics]\nenabled = false\n",
            dir.join("data").display(),
            g.region,
            g.bucket,
            g.access_key,
            g.secret_key
        ),
    )
    .unwrap();
    cfg
}

/// Queries covering every filter and the window's edges.
fn queries(all: &[Event]) -> Vec<(String, Q)> {
    let t0 = today();
    let mut sys: Vec<&Event> = all.iter().filter(|e| e.tier.as_str() == "system").collect();
    sys.sort_by_key(|e| e.ts);
    // Exact event timestamps as edges: since includes, until excludes.
    let (a, b) = (sys[sys.len() / 3].ts, sys[2 * sys.len() / 3].ts);
    let base = |tier| Q {
        tier,
        since: t0 - 6 * DAY,
        ..Default::default()
    };
    let mut v = vec![
        ("all system".to_string(), base("system")),
        (
            "exact edges".into(),
            Q {
                since: a,
                until: Some(b),
                ..base("system")
            },
        ),
        (
            "one ms window".into(),
            Q {
                since: a,
                until: Some(a + 1),
                ..base("system")
            },
        ),
        (
            "backlog day".into(),
            Q {
                since: t0 - 3 * DAY,
                until: Some(t0 - 2 * DAY),
                ..base("system")
            },
        ),
        (
            "today".into(),
            Q {
                since: t0,
                ..base("system")
            },
        ),
        (
            "future".into(),
            Q {
                since: t0 + 3 * DAY,
                ..base("system")
            },
        ),
        (
            "until before since".into(),
            Q {
                since: b,
                until: Some(a),
                ..base("system")
            },
        ),
    ];
    let filters: Vec<(&str, Q)> = vec![
        (
            "lvl warn",
            Q {
                lvl: Some(Level::Warn),
                ..base("system")
            },
        ),
        (
            "lvl error src worker",
            Q {
                lvl: Some(Level::Error),
                src: Some("worker"),
                ..base("system")
            },
        ),
        (
            "kind meta",
            Q {
                kind: Some("meta"),
                ..base("system")
            },
        ),
        (
            "instance h1",
            Q {
                instance_id: Some("h1"),
                ..base("system")
            },
        ),
        (
            "user u1",
            Q {
                user_id: Some("u1"),
                ..base("system")
            },
        ),
        (
            "req r2",
            Q {
                req_id: Some("r2"),
                ..base("system")
            },
        ),
        (
            "grep RARE",
            Q {
                grep: Some("RARE"),
                ..base("system")
            },
        ),
        (
            "limit 17",
            Q {
                limit: Some(17),
                since: a,
                ..base("system")
            },
        ),
        ("action all projects", base("action")),
        (
            "action p1",
            Q {
                project_id: Some("p1"),
                ..base("action")
            },
        ),
        (
            "action p2 yesterday",
            Q {
                project_id: Some("p2"),
                since: t0 - DAY,
                until: Some(t0),
                ..base("action")
            },
        ),
        (
            "build b3",
            Q {
                build_id: Some("b3"),
                ..base("build")
            },
        ),
        (
            "build b3 window",
            Q {
                build_id: Some("b3"),
                since: t0 - DAY,
                until: Some(t0),
                ..base("build")
            },
        ),
        (
            "builds since yesterday",
            Q {
                since: t0 - DAY,
                ..base("build")
            },
        ),
        (
            "build missing",
            Q {
                build_id: Some("nope"),
                ..base("build")
            },
        ),
    ];
    v.extend(filters.into_iter().map(|(n, q)| (n.to_string(), q)));
    v
}

fn check_all(cfg: &Path, all: &[Event], what: &str) {
    let mut nonempty = 0;
    for (name, q) in queries(all) {
        let want = q.expect(all);
        let (got, _) = query(cfg, &q.args());
        assert_same(&format!("{what}: {name}"), &got, &want);
        nonempty += usize::from(!want.is_empty());
    }
    // The corpus must exercise the filters, not answer nothing everywhere.
    assert!(
        nonempty >= 18,
        "{what}: only {nonempty} queries had answers"
    );
}

#[test]
fn every_filter_and_edge_on_a_dir_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(5, 400);
    let all = corpus.events();
    assert!(all.len() > 20_000, "{}", all.len());
    let bucket: Arc<dyn Bucket> = Arc::new(DirBucket::new(dir.path().join("bucket")));
    runtime().block_on(corpus.store(&bucket, &dir.path().join("data")));
    check_all(&dir_config(dir.path()), &all, "dir");
}

#[test]
fn every_filter_and_edge_on_s3_and_build_id_in_one_get() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(5, 400);
    let all = corpus.events();
    let rt = runtime();
    let bucket: Arc<dyn Bucket> = Arc::new(S3Bucket::new(&g.settings()));
    rt.block_on(corpus.store(&bucket, &dir.path().join("data")));
    check_all(&s3_config(dir.path(), &g, &g.endpoint), &all, "s3");

    // --build-id: one request, counted at a proxy in front of Garage.
    let proxy = rt.block_on(Proxy::start(g.s3_addr, Faults::default()));
    let via = s3_config(dir.path(), &g, &proxy.endpoint);
    let q = Q {
        tier: "build",
        since: today() - 6 * DAY,
        build_id: Some("b4"),
        ..Default::default()
    };
    let before = proxy.request_count();
    let (got, _) = query(&via, &q.args());
    assert_same("build b4 via proxy", &got, &q.expect(&all));
    assert!(!got.is_empty());
    let seen: Vec<String> = proxy
        .recorded()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        proxy.request_count() - before,
        1,
        "--build-id must be one GET: {seen:?}"
    );
}

/// The S3 client's own retries are off (the uploader has its own policy),
/// so the read side retries by itself: every listing, HEAD and GET first
/// gets a 503, and every GET's body is then cut halfway once. The answers
/// must still be exactly the ones without faults, never an error and never
/// a silently shorter result.
#[test]
fn queries_survive_a_503_on_every_request_and_a_cut_on_every_body() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(2, 200);
    let all = corpus.events();
    let rt = runtime();
    let bucket: Arc<dyn Bucket> = Arc::new(S3Bucket::new(&g.settings()));
    rt.block_on(corpus.store(&bucket, &dir.path().join("data")));
    let proxy = rt.block_on(Proxy::start(
        g.s3_addr,
        Faults {
            fail_first_each: true,
            cut_first_each: true,
            ..Faults::default()
        },
    ));
    let via = s3_config(dir.path(), &g, &proxy.endpoint);
    let q = Q {
        tier: "system",
        since: today() - 6 * DAY,
        ..Default::default()
    };
    let want = q.expect(&all);
    assert!(want.len() > 1000, "{}", want.len());
    let (got, _) = query(&via, &q.args());
    assert_same("all system events through faults", &got, &want);
    let recorded = proxy.recorded();
    let gets = recorded.iter().filter(|r| r.method == "GET").count();
    let heads = recorded.iter().filter(|r| r.method == "HEAD").count();
    // Each object: HEAD failed + HEAD, GET failed + GET cut + GET.
    assert!(
        heads >= 2 && gets >= 3,
        "faults not exercised: {} requests",
        recorded.len()
    );
}
