//! The README's DuckDB worked example, run exactly as written (the SQL is
//! taken from README.md) on objects the agent wrote into a directory
//! bucket, compared with `logship query`. Needs DuckDB's Python package
//! (`.ci/install-read-deps.sh`); skipped with a note when it is missing.

use std::path::PathBuf;
use std::process::Command;

use crate::support::agent::{append, Agent};
use crate::support::read::{query, today, DAY};

fn duckdb_python() -> Option<PathBuf> {
    let cache = std::env::var_os("LOGSHIP_CI_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/logship-ci")
        });
    let py = cache.join("read-venv/bin/python");
    py.exists().then_some(py)
}

/// The SQL block after `<!-- duckdb-example -->` in README.md.
fn readme_sql() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split("<!-- duckdb-example -->")
        .nth(1)
        .expect("README has the DuckDB example");
    let block = after
        .split("```sql")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block.trim().to_string()
}

#[test]
fn the_readme_duckdb_query_matches_logship_query() {
    let Some(py) = duckdb_python() else {
        eprintln!("DuckDB not installed (run .ci/install-read-deps.sh): skipping");
        return;
    };
    let mut a = Agent::with(
        "max_bytes = \"16KiB\"",
        "[[sources]]\nname = \"app\"\ninclude = [\"{logs}/*.log\"]\n[[sources]]\nname = \"web\"\ninclude = [\"{logs}/web/*.log\"]\n",
    );
    a.start();
    std::fs::create_dir_all(a.logs().join("web")).unwrap();
    let app: Vec<String> = (0..1500)
        .map(|i| {
            if i % 7 == 0 {
                format!("ERROR app failure {i}")
            } else {
                format!("INFO app ok {i}")
            }
        })
        .collect();
    let web: Vec<String> = (0..900)
        .map(|i| {
            if i % 5 == 0 {
                format!("{{\"level\":\"error\",\"msg\":\"web \\\"quoted\\\" failure {i}\"}}")
            } else {
                format!("{{\"level\":\"info\",\"msg\":\"web {i}\"}}")
            }
        })
        .collect();
    append(&a.logs().join("app.log"), &app);
    append(&a.logs().join("web/w.log"), &web);
    a.wait_local(2400);
    assert!(a.term().success());
    let objects = crate::support::agent::files_under(&a.bucket())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
        .count();
    assert!(objects > 3, "want several objects, got {objects}");

    let sql = readme_sql().replace("/var/lib/logship/bucket", a.bucket().to_str().unwrap());
    let script = "import duckdb, json, sys\nfor r in duckdb.sql(sys.argv[1]).fetchall():\n    print(json.dumps(list(r)))\n";
    let out = Command::new(&py)
        .args(["-c", script, &sql])
        .output()
        .expect("running duckdb");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: Vec<(i64, String, u64, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // Local segments are gone after upload only with retention; remove them
    // so logship answers from the bucket alone, as DuckDB does.
    let _ = std::fs::remove_dir_all(a.data().join("system"));
    let (events, _) = query(
        &a.config,
        &[
            "--tier".into(),
            "system".into(),
            "--since".into(),
            (today() - 2 * DAY).to_string(),
            "--lvl".into(),
            "error".into(),
        ],
    );
    let ours: Vec<(i64, String, u64, String)> = events
        .into_iter()
        .map(|e| (e.ts, e.instance_id, e.seq, e.msg))
        .collect();
    assert_eq!(ours.len(), 1500 / 7 + 1 + 900 / 5, "every error line once");
    assert_eq!(duck, ours);
}
