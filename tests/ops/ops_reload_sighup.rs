//! `SIGHUP` (what `systemctl reload` sends) reloads even an unchanged file.
//! The signal goes to the whole test process: every other reloader in this
//! binary is built with `.sighup(false)`, so only this one reacts.

use std::time::Duration;

use logship::ops::reload::Reloader;
use logship::ops::shutdown;

#[tokio::test]
async fn sighup_reloads_the_file() {
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

    // An invalid file on SIGHUP: nothing is sent, the process lives on.
    std::fs::write(&path, "[segments]\ncompression_level = 0\n").unwrap();
    // Let the file event's (valid-or-not) attempt pass first.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    let r = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await;
    assert!(r.is_err(), "an invalid config never reaches the pipeline");
}
