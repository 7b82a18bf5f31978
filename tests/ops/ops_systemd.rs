//! sd_notify over a real unix datagram socket: the messages systemd reads,
//! the watchdog cadence, and `$NOTIFY_SOCKET` handling in a child process
//! (the environment is never changed in this multi-threaded test process).

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use logship::ops::shutdown;
use logship::ops::systemd::Notifier;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (dir, path, sock)
}

#[test]
fn sends_the_protocol_messages() {
    let (_dir, path, sock) = listener();
    let n = Notifier::connect(path.as_os_str(), None).unwrap();
    assert!(n.is_enabled());
    n.ready();
    assert_eq!(recv(&sock), "READY=1\n");
    n.reloading();
    let msg = recv(&sock);
    let mut lines = msg.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC follows RELOADING")
        .parse()
        .unwrap();
    assert!(usec > 0);
    n.status("tailing 3 files\nsecond line");
    assert_eq!(recv(&sock), "STATUS=tailing 3 files second line\n");
    n.stopping();
    assert_eq!(recv(&sock), "STOPPING=1\n");
    assert_eq!(n.watchdog_interval(), None);
}

#[test]
fn reaches_abstract_sockets() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("logship-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = Notifier::connect(OsStr::new(&format!("@{name}")), None).unwrap();
    n.ready();
    assert_eq!(recv(&sock), "READY=1\n");
}

#[test]
fn disabled_notifier_is_a_no_op() {
    let n = Notifier::disabled();
    assert!(!n.is_enabled());
    n.ready();
    n.reloading();
    n.status("x");
    n.stopping();
    assert_eq!(n.watchdog_interval(), None);
}

#[tokio::test]
async fn watchdog_pings_at_half_the_interval_until_shutdown() {
    let (_dir, path, sock) = listener();
    let n = Notifier::connect(path.as_os_str(), Some(Duration::from_millis(200))).unwrap();
    assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(100)));
    let (trigger, sd) = shutdown::channel();
    let task = n.spawn_watchdog(sd).expect("watchdog requested");
    tokio::time::sleep(Duration::from_millis(350)).await;
    trigger.fire();
    task.await.unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut pings = 0;
    let mut buf = [0u8; 64];
    while let Ok(len) = sock.recv(&mut buf) {
        assert_eq!(&buf[..len], b"WATCHDOG=1\n");
        pings += 1;
    }
    // Ticks at 0, 100, 200, 300 ms; allow for a slow, shared machine.
    assert!((2..=5).contains(&pings), "{pings} pings in 350 ms");
}

/// Runs in a child process with the environment systemd would set.
#[test]
fn child_from_env() {
    let Ok(expect) = std::env::var("LOGSHIP_SD_CHILD") else {
        return; // only meaningful as the child of `from_env_reads_notify_socket`
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = Notifier::from_env();
        assert_eq!(n.is_enabled(), expect != "disabled");
        n.ready();
        if expect == "enabled" {
            assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(50)));
            let (trigger, sd) = shutdown::channel();
            let t = n.spawn_watchdog(sd).unwrap();
            tokio::time::sleep(Duration::from_millis(120)).await;
            trigger.fire();
            t.await.unwrap();
        } else {
            assert!(n.spawn_watchdog(shutdown::channel().1).is_none());
        }
        n.stopping();
    });
}

fn run_child(env: &[(&str, &OsStr)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "ops_systemd::child_from_env",
        "--test-threads=1",
        "--nocapture",
    ])
    .env_remove("NOTIFY_SOCKET")
    .env_remove("WATCHDOG_USEC")
    .env_remove("WATCHDOG_PID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child ran the test"
    );
}

#[test]
fn from_env_reads_notify_socket() {
    let (_dir, path, sock) = listener();
    run_child(&[
        ("LOGSHIP_SD_CHILD", OsStr::new("enabled")),
        ("NOTIFY_SOCKET", path.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new("100000")),
    ]);
    assert_eq!(recv(&sock), "READY=1\n");
    let mut rest = Vec::new();
    loop {
        let m = recv(&sock);
        if m == "STOPPING=1\n" {
            break;
        }
        rest.push(m);
    }
    assert!(
        rest.len() >= 2 && rest.iter().all(|m| m == "WATCHDOG=1\n"),
        "{rest:?}"
    );
}

#[test]
fn from_env_without_socket_is_disabled() {
    run_child(&[("LOGSHIP_SD_CHILD", OsStr::new("disabled"))]);
    // WATCHDOG_PID for another process: no watchdog, still notifies.
    let (_dir, path, sock) = listener();
    run_child(&[
        ("LOGSHIP_SD_CHILD", OsStr::new("notify-only")),
        ("NOTIFY_SOCKET", path.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new("100000")),
        ("WATCHDOG_PID", OsStr::new("1")),
    ]);
    assert_eq!(recv(&sock), "READY=1\n");
    assert_eq!(recv(&sock), "STOPPING=1\n");
}

#[tokio::test]
async fn checked_watchdog_stops_pinging_when_unhealthy() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (_dir, path, sock) = listener();
    let n = Notifier::connect(path.as_os_str(), Some(Duration::from_millis(100))).unwrap();
    let healthy = Arc::new(AtomicBool::new(false));
    let (trigger, sd) = shutdown::channel();
    let task = n
        .spawn_watchdog_checked(sd, {
            let healthy = healthy.clone();
            move || healthy.load(Ordering::Relaxed)
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(sock.recv(&mut buf).is_err(), "no ping while unhealthy");
    healthy.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    trigger.fire();
    task.await.unwrap();
    let len = sock.recv(&mut buf).expect("pings once healthy");
    assert_eq!(&buf[..len], b"WATCHDOG=1\n");
}
