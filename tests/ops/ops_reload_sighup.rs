//! `SIGHUP` (what `systemctl reload` sends) reloads even an unchanged file.
//! The signal goes to the whole test process: every other reloader in this
//! binary is built with `.sighup(false)`, so only this one reacts.

use std::time::Duration;

use logship::ops::metrics::{metrics, ResultLabel};
use logship::ops::reload::Reloader;
use logship::ops::shutdown;

#[tokio::test]
async fn sighup_reloads_the_file() {
    // Reload counters are process-wide; the other reloaders wait.
    let _metrics = crate::support::metrics_lock().await;
    let errors = || {
        metrics()
            .config_reloads
            .get_or_create(&ResultLabel {
                result: "error".into(),
            })
            .get()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[segments]\ncompression_level = 4\n").unwrap();
    let (_trigger, sd) = shutdown::channel();
    let mut rx = Reloader::new(&path).spawn(sd).unwrap();

    // SAFETY: plain kill(2) to our own pid; the handler is installed above.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    let l = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("reload after SIGHUP")
        .unwrap();
    assert_eq!(l.config.segments.compression_level, 4);

    // An invalid file: its file event is one rejected attempt...
    let before = errors();
    std::fs::write(&path, "[segments]\ncompression_level = 0\n").unwrap();
    wait_for(
        || errors() == before + 1,
        "the file event's rejected attempt",
    )
    .await;
    // ...and the SIGHUP after it another one: counted, nothing sent, the
    // process lives on.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    wait_for(|| errors() == before + 2, "the SIGHUP's rejected attempt").await;
    assert!(
        rx.try_recv().is_err(),
        "an invalid config never reaches the pipeline"
    );
}

/// Poll `cond` until it holds; panics after a generous deadline.
async fn wait_for(cond: impl Fn() -> bool, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}
