//! SPEC §4: after `kill -9` at any moment and a restart, every line that was
//! in a tailed file appears exactly once, with unique `(instanceId, seq)`.

use crate::support;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use support::agent::{append, assert_exactly_once, Agent};

/// A writer appends continuously (with rename rotations and a few
/// copytruncates) while the agent is killed 20 times at random moments.
#[test]
fn kill_9_twenty_times_while_writing_and_rotating() {
    let mut a = Agent::simple("");
    a.include_rotated();
    // Small segments so seals and uploads are in flight at kill time too.
    let cfg = fs::read_to_string(&a.config).unwrap().replace(
        "commit_interval = \"50ms\"",
        "commit_interval = \"50ms\"\nmax_bytes = \"64KiB\"",
    );
    fs::write(&a.config, cfg).unwrap();
    let logs = a.logs();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let log = logs.join("app.log");
            let mut written = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<String> =
                    (i..i + 50).map(|n| format!("crash line {n:08}")).collect();
                append(&log, &batch);
                written.extend(batch);
                i += 50;
                if i.is_multiple_of(3000) {
                    // Like logrotate: shift the previous rotation away first.
                    let one = logs.join("app.log.1");
                    if one.exists() {
                        fs::rename(&one, logs.join(format!("app.log.2-{i}"))).unwrap();
                    }
                    if (i / 3000) % 4 == 3 {
                        // copytruncate (atomic with respect to this writer).
                        fs::copy(&log, &one).unwrap();
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&log)
                            .unwrap()
                            .set_len(0)
                            .unwrap();
                    } else {
                        fs::rename(&log, &one).unwrap();
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            written
        })
    };
    // A fresh seed each run (printed, so a failure can be replayed with
    // LOGSHIP_CRASH_SEED).
    let seed = std::env::var("LOGSHIP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill -9 schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    a.start();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        a.kill9();
        a.start();
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    a.wait_local(written.len());
    let st = a.term();
    assert!(st.success(), "stderr:\n{}", a.stderr());
    let events = a.bucket_events();
    assert_exactly_once(&events, &written);
    // Local segments never hold an event twice either.
    let local = a.local_events();
    assert_exactly_once(&local, &written);
    // seq strictly increases within each segment (in write order).
    for (key, evs) in a.bucket_objects() {
        assert!(
            evs.windows(2).all(|w| w[0].seq < w[1].seq),
            "seq not increasing in {key}"
        );
    }
}
