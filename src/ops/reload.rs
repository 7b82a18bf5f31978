//! Hot reload: notice a new config, validate it, hand only valid ones over.
//!
//! Two triggers: `SIGHUP` (what `systemctl reload` sends, via the unit's
//! `ExecReload=`) and changes of the config file. The file's *directory* is
//! watched, not the file: editors save by writing a temporary file and
//! renaming it over the old one, and a Kubernetes ConfigMap volume swaps a
//! `..data` symlink; both replace the inode a file watch would be attached
//! to. File events are debounced (one reload after the writes settle) and a
//! file whose text did not change is not reloaded; `SIGHUP` always reloads.
//!
//! The invariant: a config reaches the channel only after [`config::load_str`]
//! accepted it. A broken file is logged with `file:line:col`, counted as
//! `logship_config_reloads_total{result="error"}`, and the running config
//! stays in place (SPEC §4). The pipeline applies what it receives.
//!
//! A few settings are read once at start ([`restart_only_changes`]). A new
//! config that changes one of them is refused whole — logged with the key,
//! counted as an error — rather than half applied and reported as a success.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use super::metrics::{metrics, ResultLabel};
use super::shutdown::Shutdown;
use super::systemd::Notifier;
use crate::config::{self, Config, Loaded};

pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// Configures and starts the reload task.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    debounce: Duration,
    sighup: bool,
    notifier: Notifier,
    current_text: Option<String>,
    /// The config running now, for the restart-only comparison.
    current: Option<Config>,
}

/// What started a reload attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The file changed; skip if its text is what we already run.
    File,
    /// `SIGHUP`: the operator asked; always reload.
    Signal,
}

impl Reloader {
    pub fn new(path: impl Into<PathBuf>) -> Reloader {
        Reloader {
            path: path.into(),
            debounce: DEFAULT_DEBOUNCE,
            sighup: true,
            notifier: Notifier::disabled(),
            current_text: None,
            current: None,
        }
    }

    /// Quiet time after the last file event before reloading.
    pub fn debounce(mut self, d: Duration) -> Reloader {
        self.debounce = d;
        self
    }

    /// Listen for `SIGHUP` (default on).
    pub fn sighup(mut self, on: bool) -> Reloader {
        self.sighup = on;
        self
    }

    /// Send `RELOADING=1` / `READY=1` / `STATUS=` around each attempt.
    pub fn notifier(mut self, n: Notifier) -> Reloader {
        self.notifier = n;
        self
    }

    /// The config the agent started with, so an unchanged file is not
    /// reloaded (default: the file's text when the task starts).
    pub fn current(mut self, loaded: &Loaded) -> Reloader {
        self.current_text = Some(loaded.source.text.clone());
        self.current = Some(loaded.config.clone());
        self
    }

    /// Start watching. Valid configs arrive on the returned channel; the
    /// task ends at `shutdown` or when the receiver is dropped.
    pub fn spawn(mut self, shutdown: Shutdown) -> anyhow::Result<mpsc::Receiver<Loaded>> {
        let (fs_tx, fs_rx) = mpsc::unbounded_channel();
        let watcher = watch_dirs(&self.path, fs_tx)?;
        let hup = if self.sighup {
            Some(signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?)
        } else {
            None
        };
        if self.current_text.is_none() {
            self.current_text = std::fs::read_to_string(&self.path).ok();
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            // Dropping the watcher stops the notify thread; keep it until the end.
            let _watcher = watcher;
            self.run(fs_rx, hup, tx, shutdown).await;
        });
        Ok(rx)
    }

    async fn run(
        mut self,
        mut fs_rx: mpsc::UnboundedReceiver<()>,
        mut hup: Option<Signal>,
        tx: mpsc::Sender<Loaded>,
        mut shutdown: Shutdown,
    ) {
        loop {
            let trigger = tokio::select! {
                _ = shutdown.wait() => return,
                Some(()) = fs_rx.recv() => {
                    // Wait until the writes settle.
                    loop {
                        tokio::select! {
                            _ = shutdown.wait() => return,
                            r = tokio::time::timeout(self.debounce, fs_rx.recv()) => match r {
                                Ok(Some(())) => continue,
                                _ => break,
                            },
                        }
                    }
                    Trigger::File
                }
                Some(()) = hangup(&mut hup) => Trigger::Signal,
            };
            if let Some(loaded) = self.attempt(trigger) {
                if tx.send(loaded).await.is_err() {
                    return; // nobody applies configs any more
                }
            }
        }
    }

    /// Read and validate; `Some` only for a valid config worth applying.
    fn attempt(&mut self, trigger: Trigger) -> Option<Loaded> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                count("error");
                tracing::error!(
                    "{}: cannot read config ({e}); keeping the running config",
                    self.path.display()
                );
                return None;
            }
        };
        if trigger == Trigger::File && self.current_text.as_deref() == Some(text.as_str()) {
            tracing::debug!(path = %self.path.display(), "config file touched but unchanged");
            return None;
        }
        self.notifier.reloading();
        let result = config::load_str(&self.path, text.clone(), &|k| std::env::var(k).ok());
        // Remember the text either way: the same broken text is reported once.
        self.current_text = Some(text);
        let out = match result {
            Ok(loaded) if self.refuse_restart_only(&loaded.config) => None,
            Ok(loaded) => {
                self.current = Some(loaded.config.clone());
                count("ok");
                tracing::info!(path = %self.path.display(), ?trigger, "config reloaded");
                self.notifier.status("config reloaded");
                Some(loaded)
            }
            Err(errors) => {
                count("error");
                for e in &errors.0 {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    "config reload failed ({} errors); keeping the running config",
                    errors.0.len()
                );
                self.notifier
                    .status("config reload failed; running the previous config (see log)");
                None
            }
        };
        // The reload is over either way; systemd waits for this after RELOADING=1.
        self.notifier.ready();
        out
    }
}

impl Reloader {
    /// Log and count a new config that changes a setting only a restart can
    /// apply; `true` when it must not be handed over.
    fn refuse_restart_only(&mut self, new: &Config) -> bool {
        let Some(old) = &self.current else {
            return false;
        };
        let keys = restart_only_changes(old, new);
        if keys.is_empty() {
            return false;
        }
        count("error");
        for key in &keys {
            tracing::error!(
                key,
                "{}: {key} changed, and that takes a restart; reload refused, the running config stays (restart the agent to apply it)",
                self.path.display()
            );
        }
        self.notifier
            .status("config reload refused: a setting changed that needs a restart (see log)");
        true
    }
}

/// The keys whose change between `old` and `new` only a restart can apply:
/// where data lives and who the agent is (checkpoint, segments, `seq`), the
/// listener it already bound, and the upload settings baked into queued
/// work (object keys carry the prefix; the queue's width is fixed), and
/// `[streams]` (its publisher is connected and subscribed once, at start).
/// Everything else — sources, redaction, segments limits, alerts, bucket
/// credentials and endpoint — is applied in place.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.agent.data_dir != new.agent.data_dir {
        keys.push("agent.data_dir");
    }
    if old.agent.instance_id() != new.agent.instance_id() {
        keys.push("agent.instance_id");
    }
    if old.metrics.enabled != new.metrics.enabled {
        keys.push("metrics.enabled");
    }
    if old.metrics.listen != new.metrics.listen {
        keys.push("metrics.listen");
    }
    if old.bucket.key_prefix() != new.bucket.key_prefix() {
        keys.push("bucket.prefix");
    }
    if old.bucket.concurrency != new.bucket.concurrency {
        keys.push("bucket.concurrency");
    }
    // Stream tasks are started once, from the committed cursors.
    if config::stream::specs(&old.sources) != config::stream::specs(&new.sources) {
        keys.push("sources (kind = \"http_ndjson\" / \"vercel\")");
    }
    if old.streams != new.streams {
        keys.push("streams");
    }
    keys
}

fn count(result: &str) {
    metrics()
        .config_reloads
        .get_or_create(&ResultLabel {
            result: result.to_string(),
        })
        .inc();
}

/// Resolves on the next `SIGHUP`; never when not listening.
async fn hangup(hup: &mut Option<Signal>) -> Option<()> {
    match hup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Watch the directory of `path` and, when `path` is a symlink, the
/// directory of its target too; send `()` for each event that may concern it.
fn watch_dirs(
    path: &Path,
    tx: mpsc::UnboundedSender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut dirs = vec![parent(path)];
    let mut names: Vec<OsString> = path.file_name().into_iter().map(Into::into).collect();
    if let Ok(target) = std::fs::canonicalize(path) {
        if parent(&target) != dirs[0] {
            dirs.push(parent(&target));
        }
        names.extend(target.file_name().map(Into::into));
    }
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let relevant = event.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                // `..data` & co: the symlink swap of a Kubernetes ConfigMap volume.
                names.iter().any(|m| m == n) || n.to_string_lossy().starts_with("..")
            })
        });
        if relevant {
            // Fails only when the reload task is gone; nothing left to tell.
            let _ = tx.send(());
        }
    })
    .context("cannot start the config file watcher")?;
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| {
                format!(
                    "cannot watch {} for config changes; does the directory exist and is it readable?",
                    dir.display()
                )
            })?;
    }
    Ok(watcher)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_changes_need_a_restart_and_bucket_retention_does_not() {
        let load = |text: &str| {
            config::load_str(Path::new("a.toml"), text.to_string(), &|_| None)
                .unwrap()
                .config
        };
        let old = load("[streams]\nredis_url = \"redis://127.0.0.1:6379\"\n");
        let moved = load("\n\n[streams]\nredis_url = \"redis://127.0.0.1:6379\"\n");
        assert!(
            restart_only_changes(&old, &moved).is_empty(),
            "positions do not count"
        );
        let other = load("[streams]\nredis_url = \"redis://127.0.0.1:6380\"\n");
        assert_eq!(restart_only_changes(&old, &other), ["streams"]);
        let off = load("");
        assert_eq!(restart_only_changes(&old, &off), ["streams"]);
        let retention = load("[streams]\nredis_url = \"redis://127.0.0.1:6379\"\n[bucket.retention]\ndebug = 1\ninfo = 1\nwarn = 1\nerror = 1\n");
        assert!(restart_only_changes(&old, &retention).is_empty());
    }
}
