//! Hot reload from file changes: valid configs arrive (debounced, also when
//! an editor replaces the file by rename), invalid ones never do, and each
//! attempt is counted and told to systemd.
//!
//! SIGHUP lives in `ops_reload_sighup.rs`: a signal reaches the whole test
//! process, so the reloaders here are built with `.sighup(false)`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use logship::config::Loaded;
use logship::ops::metrics::{metrics, ResultLabel};
use logship::ops::reload::Reloader;
use logship::ops::shutdown;
use logship::ops::systemd::Notifier;
use tokio::sync::mpsc::Receiver;

const DEBOUNCE: Duration = Duration::from_millis(150);

fn config(level: u32) -> String {
    format!("[segments]\ncompression_level = {level}\n")
}

fn reloads(result: &str) -> u64 {
    metrics()
        .config_reloads
        .get_or_create(&ResultLabel {
            result: result.into(),
        })
        .get()
}

/// Write like an editor: a temporary file renamed over the original.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn next(rx: &mut Receiver<Loaded>) -> Loaded {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a reload within 10 s")
        .expect("reloader alive")
}

async fn nothing(rx: &mut Receiver<Loaded>) {
    if let Ok(Some(l)) = tokio::time::timeout(DEBOUNCE * 4, rx.recv()).await {
        panic!(
            "unexpected reload: level {}",
            l.config.segments.compression_level
        );
    }
}

fn start(dir: &Path) -> (std::path::PathBuf, Receiver<Loaded>, shutdown::Trigger) {
    let path = dir.join("agent.toml");
    std::fs::write(&path, config(6)).unwrap();
    let (trigger, sd) = shutdown::channel();
    let rx = Reloader::new(&path)
        .debounce(DEBOUNCE)
        .sighup(false)
        .spawn(sd)
        .unwrap();
    (path, rx, trigger)
}

#[tokio::test]
async fn valid_change_arrives_invalid_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut rx, _trigger) = start(dir.path());

    std::fs::write(&path, config(3)).unwrap();
    assert_eq!(next(&mut rx).await.config.segments.compression_level, 3);

    let errors_before = reloads("error");
    std::fs::write(&path, config(42)).unwrap(); // fails validation
    nothing(&mut rx).await;
    assert!(reloads("error") > errors_before, "error counted");

    std::fs::write(&path, "[segments\n").unwrap(); // fails parsing
    nothing(&mut rx).await;

    std::fs::write(&path, config(9)).unwrap();
    let l = next(&mut rx).await;
    assert_eq!(
        l.config.segments.compression_level, 9,
        "the fixed file, not a broken one"
    );
    assert_eq!(l.source.file, path);
    assert!(reloads("ok") >= 2);
}

#[tokio::test]
async fn editor_rename_and_bursts_give_one_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut rx, _trigger) = start(dir.path());

    // Many quick saves: one reload with the last text.
    for level in 1..=5 {
        replace(&path, &config(level));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(next(&mut rx).await.config.segments.compression_level, 5);
    nothing(&mut rx).await;

    // Unrelated files in the directory and touching without a change: nothing.
    std::fs::write(dir.path().join("other.txt"), "x").unwrap();
    replace(&path, &config(5));
    nothing(&mut rx).await;

    // Still watching after the inode was replaced.
    replace(&path, &config(2));
    assert_eq!(next(&mut rx).await.config.segments.compression_level, 2);
}

#[tokio::test]
async fn deleted_file_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut rx, _trigger) = start(dir.path());
    std::fs::remove_file(&path).unwrap();
    nothing(&mut rx).await;
    std::fs::write(&path, config(4)).unwrap();
    assert_eq!(next(&mut rx).await.config.segments.compression_level, 4);
}

#[tokio::test]
async fn tells_systemd_about_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sock = std::sync::Arc::new(sock);
    let recv = move || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };

    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config(6)).unwrap();
    let (_trigger, sd) = shutdown::channel();
    let mut rx = Reloader::new(&path)
        .debounce(DEBOUNCE)
        .sighup(false)
        .notifier(Notifier::connect(sock_path.as_os_str(), None).unwrap())
        .spawn(sd)
        .unwrap();

    std::fs::write(&path, config(42)).unwrap();
    let (r, s, ok) = tokio::task::spawn_blocking({
        let recv = recv.clone();
        move || (recv(), recv(), recv())
    })
    .await
    .unwrap();
    assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
    assert!(s.starts_with("STATUS=config reload failed"), "{s}");
    assert_eq!(ok, "READY=1\n");

    std::fs::write(&path, config(7)).unwrap();
    assert_eq!(next(&mut rx).await.config.segments.compression_level, 7);
    let (r, s, ok) = tokio::task::spawn_blocking(move || (recv(), recv(), recv()))
        .await
        .unwrap();
    assert!(r.starts_with("RELOADING=1\n"), "{r}");
    assert_eq!(s, "STATUS=config reloaded\n");
    assert_eq!(ok, "READY=1\n");
}

#[tokio::test]
async fn stops_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, mut rx, trigger) = start(dir.path());
    trigger.fire();
    let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(end, Ok(None)), "channel closes when the task ends");
}

#[test]
fn missing_directory_is_an_actionable_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let err = Reloader::new("/nonexistent-logship-dir/agent.toml")
        .sighup(false)
        .spawn(shutdown::channel().1)
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/nonexistent-logship-dir"), "{msg}");
}

/// A Kubernetes ConfigMap volume: `agent.toml -> ..data/agent.toml`,
/// `..data -> ..<timestamp>`; an update swaps `..data` atomically.
#[tokio::test]
async fn configmap_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(d.join("..v1/agent.toml"), config(6)).unwrap();
    symlink("..v1", d.join("..data")).unwrap();
    symlink("..data/agent.toml", d.join("agent.toml")).unwrap();

    let (_trigger, sd) = shutdown::channel();
    let mut rx = Reloader::new(d.join("agent.toml"))
        .debounce(DEBOUNCE)
        .sighup(false)
        .spawn(sd)
        .unwrap();

    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(d.join("..v2/agent.toml"), config(8)).unwrap();
    symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..v1")).unwrap();

    assert_eq!(next(&mut rx).await.config.segments.compression_level, 8);
}
