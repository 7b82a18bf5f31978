//! Telling systemd how the service is doing (`Type=notify`, sd_notify(3)).
//!
//! The protocol is one datagram per state change, `KEY=value` lines, sent to
//! the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the
//! abstract namespace). Without that variable — a terminal, a container —
//! every call is a no-op, so callers never need to ask "am I under systemd?".
//!
//! Why not the `sd-notify` crate: it reads `$NOTIFY_SOCKET` from the process
//! environment on every call and cannot be pointed at a socket explicitly,
//! so tests would have to mutate the environment of a multi-threaded test
//! process; it also does not reach abstract-namespace sockets. The protocol
//! is small enough to own: [`Notifier::connect`] takes the path, and
//! [`Notifier::from_env`] reads the environment once, at start-up.
//!
//! The watchdog (`WatchdogSec=` in the unit) pings at half the interval
//! systemd announces in `$WATCHDOG_USEC`, from a tokio task: a wedged
//! runtime stops the pings and systemd restarts the agent.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use super::shutdown::Shutdown;

/// A handle to the service manager; cheap to clone, no-op when disabled.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    socket: UnixDatagram,
    /// How often systemd wants a `WATCHDOG=1`, if at all.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that does nothing.
    pub fn disabled() -> Notifier {
        Notifier { inner: None }
    }

    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`; disabled
    /// (with a warning) when the socket is set but cannot be reached.
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
            return Notifier::disabled();
        };
        let watchdog = watchdog_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match Notifier::connect(&path, watchdog) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(socket = ?path, error = %e, "NOTIFY_SOCKET is set but unreachable; not notifying systemd");
                Notifier::disabled()
            }
        }
    }

    /// Connect to the socket at `path` (`@name`: abstract namespace).
    pub fn connect(path: &OsStr, watchdog: Option<Duration>) -> io::Result<Notifier> {
        let socket = UnixDatagram::unbound()?;
        match path.as_bytes().strip_prefix(b"@") {
            Some(name) => socket.connect_addr(&SocketAddr::from_abstract_name(name)?)?,
            None => socket.connect(path)?,
        }
        Ok(Notifier {
            inner: Some(Arc::new(Inner { socket, watchdog })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Start-up finished (or a reload finished): `READY=1`.
    pub fn ready(&self) {
        self.send("READY=1\n");
    }

    /// A reload started. systemd ≥ 253 wants the monotonic time with it;
    /// finish the reload with [`Notifier::ready`].
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\n",
            monotonic_usec()
        ));
    }

    /// Graceful shutdown started: `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\n");
    }

    /// One line shown by `systemctl status`.
    pub fn status(&self, text: &str) {
        // A newline would end the STATUS= assignment and start a new one.
        let line: String = text
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}\n"));
    }

    /// One watchdog keep-alive: `WATCHDOG=1`.
    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1\n");
    }

    /// How often to ping: half of what systemd asked for, if it asked.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.inner.as_ref()?.watchdog.map(|d| d / 2)
    }

    /// Ping the watchdog from a task until `shutdown`; `None` when systemd
    /// did not ask for a watchdog. This proves only that the async runtime
    /// runs; see [`Notifier::spawn_watchdog_checked`] to vouch for more.
    pub fn spawn_watchdog(&self, shutdown: Shutdown) -> Option<tokio::task::JoinHandle<()>> {
        self.spawn_watchdog_checked(shutdown, || true)
    }

    /// As [`Notifier::spawn_watchdog`], but a tick pings only while
    /// `healthy()` holds — e.g. "the pipeline thread made progress within
    /// the last interval". Missed pings let systemd restart a wedged agent.
    pub fn spawn_watchdog_checked(
        &self,
        mut shutdown: Shutdown,
        healthy: impl Fn() -> bool + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.watchdog_interval()?;
        let this = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if healthy() {
                            this.watchdog_ping();
                        } else {
                            tracing::warn!("not pinging the systemd watchdog: the agent is not making progress");
                        }
                    }
                    _ = shutdown.wait() => return,
                }
            }
        }))
    }

    fn send(&self, msg: &str) {
        let Some(inner) = &self.inner else { return };
        if let Err(e) = inner.socket.send(msg.as_bytes()) {
            // Losing a notification is not worth stopping the agent for;
            // systemd will say so (start timeout, watchdog) if it matters.
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// `$WATCHDOG_USEC`, unless `$WATCHDOG_PID` names another process.
fn watchdog_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    match pid.map(|p| p.trim().parse::<u32>()) {
        Some(Ok(p)) if p != me => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares against.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_env_parsing() {
        assert_eq!(
            watchdog_from(Some("2000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_from(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(watchdog_from(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("x"), None, 7), None);
        assert_eq!(watchdog_from(None, None, 7), None);
    }

    #[test]
    fn monotonic_clock_moves() {
        let a = monotonic_usec();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_usec() > a);
    }
}
