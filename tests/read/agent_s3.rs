//! End to end on S3: the agent ships to Garage, its local segments are
//! deleted, and `logship query` answers from the bucket alone — every line
//! written, once, in order, with filters.

use std::time::Duration;

use logship::event::Level;

use crate::support::agent::{append, Agent};
use crate::support::garage::Garage;
use crate::support::read::{assert_same, query, today, Q, DAY};

#[test]
fn shipped_to_garage_deleted_locally_and_queried() {
    let Some(g) = Garage::start_or_skip() else { return };
    let mut a = Agent::with(
        "max_bytes = \"32KiB\"",
        &format!(
            "[[sources]]\nname = \"app\"\ninclude = [\"{{logs}}/*.log\"]\n[bucket]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"fleet\"\n",
            g.endpoint, g.region, g.bucket, g.access_key, g.secret_key
        ),
    );
    a.start();
    let lines: Vec<String> = (0..6000)
        .map(|i| match i % 10 {
            0 => format!("ERROR job {i} failed"),
            1 | 2 => format!("WARN job {i} slow"),
            _ => format!("INFO job {i} ok"),
        })
        .collect();
    for chunk in lines.chunks(1000) {
        append(&a.logs().join("app.log"), chunk);
        std::thread::sleep(Duration::from_millis(100));
    }
    a.wait_local(6000);
    let written = a.local_events();
    assert!(a.term().success());
    assert!(g.list().keys().filter(|k| k.starts_with("fleet/system/")).count() > 5);
    std::fs::remove_dir_all(a.data().join("system")).unwrap();
    let t0 = today();
    for q in [
        Q { tier: "system", since: t0 - DAY, ..Default::default() },
        Q { tier: "system", since: t0 - DAY, lvl: Some(Level::Warn), ..Default::default() },
        Q { tier: "system", since: t0 - DAY, grep: Some("job 59"), limit: Some(50), ..Default::default() },
    ] {
        let (got, _) = query(&a.config, &q.args());
        assert_same(&format!("{q:?}"), &got, &q.expect(&written));
    }
    let (all, _) = query(&a.config, &Q { tier: "system", since: t0 - DAY, ..Default::default() }.args());
    assert_eq!(all.len(), 6000);
}
