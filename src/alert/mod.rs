//! Alert rules evaluated beside the pipeline (SPEC §8).
//!
//! ```text
//! pipeline thread ──offer()──> batch ──flush()──> bounded queue ──> engine task ──> suppressor (Redis | in-process)
//!   (cheap pre-filter,                            (full: skip,      (rules.rs,          │
//!    never blocks)                                 count dropped)    windows)           └─> channel workers ─> HTTP / SMTP
//! ```
//!
//! The write path evaluates the rules' matchers once per event
//! ([`matching`]: a (tier, lvl) table, one literal search over the message
//! for the msg regexes' literals, then the few candidate regexes) and, when
//! some matcher matched, sends the engine which ones did, the event's `ts`
//! and — only when a rule it hit may notify with it — the event (one clone,
//! shared by every rule that fires on it). The write path gathers these in
//! an [`AlertBatch`] and hands the engine a pass's worth at a time (a
//! queue hop per matched event woke the engine on another thread for every
//! warning of a storm); the batch is flushed when the pass ends, before the
//! pipeline waits for input, and when it holds [`BATCH_MAX`] events, so
//! batching adds no latency beyond the pass itself. Window bookkeeping, suppression,
//! Redis round trips and deliveries happen on tokio tasks; the engine task
//! owns all their state. A full queue drops the event for alerting only (it
//! is still written) and counts `events_dropped_total{reason="alert_queue_full"}`.
//!
//! **Reload**: [`AlertHandle::reconfigure`] swaps rules and channels in the
//! running engine (window state starts over; suppression memory is kept; a
//! changed `redis_url` reconnects). The handle the pipeline holds stays valid.
//!
//! Modules: [`config`] (TOML types, validation with positions), [`rules`]
//! (matchers, windows), [`matching`] (their evaluation on the write path),
//! [`fingerprint`], [`suppress`], [`engine`],
//! [`channels`], [`clock`].

pub mod channels;
pub mod clock;
pub mod config;
pub mod engine;
pub mod fingerprint;
pub mod matching;
pub mod rules;
pub mod scan;
pub mod suppress;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AlertsConfig, Severity};

use crate::event::Event;
use crate::ops::metrics::metrics;
use crate::ops::shutdown::Shutdown;
use channels::{Channel, Inflight};
use engine::{Compiled, Control, Engine, Offered};
use matching::RuleIndex;
use rules::Rule;

/// Default `alerts.queue_capacity`.
pub const DEFAULT_QUEUE: usize = 10_000;

/// Most events an [`AlertBatch`] gathers before it is handed over.
pub const BATCH_MAX: usize = 512;

/// Counters of one engine, for tests and diagnostics (the process-wide
/// Prometheus metrics aggregate every engine in the process).
#[derive(Debug, Default)]
pub struct Stats {
    /// Notifications decided (one per fingerprint per window, plus escalations).
    pub notified: AtomicU64,
    pub suppressed: AtomicU64,
    /// Channel deliveries that succeeded / finally failed.
    pub delivered: AtomicU64,
    pub delivery_failures: AtomicU64,
    pub queue_full: AtomicU64,
    /// Times suppression fell back to in-process (one warning each).
    pub redis_fallbacks: AtomicU64,
    pub redis_up: AtomicBool,
}

/// Knobs for embedding and tests; `Default` is what the agent uses.
#[derive(Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
    /// How often absence and escalation are evaluated.
    pub tick: Duration,
    /// How often a down Redis is re-tried.
    pub redis_probe: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            tick: Duration::from_secs(1),
            redis_probe: Duration::from_secs(1),
        }
    }
}

/// The write path's side of the alert engine: cheap to clone, never blocks.
#[derive(Clone, Default)]
pub struct AlertHandle {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// The rules in force on the write path; swapped on reconfigure, read
    /// by the engine to catch up.
    rules: SharedRules,
    /// Batches of events; bounded in events by `queued` and `capacity`
    /// (the channel's own bound, in batches, is never the tighter one).
    events: mpsc::Sender<Vec<Offered>>,
    /// Events in the queue (sent and not yet evaluated by the engine).
    queued: Arc<AtomicUsize>,
    /// `alerts.queue_capacity`: most events queued at once.
    capacity: usize,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Stats>,
    http: reqwest::Client,
}

/// One generation of rules as the write path uses it. Every queued event
/// carries the generation that evaluated it, and the engine evaluates it
/// against that generation's rules only: an event offered before a
/// reconfigure is not counted by the new rules' windows (which start over),
/// one offered after it makes the engine install the new rules first.
pub(crate) struct RuleSet {
    gen: u64,
    index: RuleIndex,
    /// The same rules (and the channels) compiled for the engine; it takes
    /// them when it installs this generation.
    pending: Mutex<Option<Box<Compiled>>>,
}

impl RuleSet {
    pub(crate) fn gen(&self) -> u64 {
        self.gen
    }

    /// The compiled rules, once (the engine's install).
    pub(crate) fn take_pending(&self) -> Option<Box<Compiled>> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The rules in force, shared by the write path and the engine.
pub(crate) type SharedRules = Arc<RwLock<Arc<RuleSet>>>;

/// The rules in force now.
pub(crate) fn current_rules(rules: &SharedRules) -> Arc<RuleSet> {
    // A poisoned lock only means a writer panicked mid-swap of an Arc: the
    // value is still a whole Arc, so reading it is fine.
    rules.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl fmt::Debug for AlertHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertHandle")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

/// Start the engine on the current tokio runtime.
pub fn start(
    cfg: &AlertsConfig,
    instance_id: &str,
    shutdown: Shutdown,
) -> anyhow::Result<AlertHandle> {
    start_with(cfg, instance_id, shutdown, Options::default())
}

/// [`start`] with a chosen clock and intervals.
pub fn start_with(
    cfg: &AlertsConfig,
    instance_id: &str,
    shutdown: Shutdown,
    opts: Options,
) -> anyhow::Result<AlertHandle> {
    let runtime = tokio::runtime::Handle::try_current()
        .context("alerts: start() must be called inside a tokio runtime")?;
    let http = reqwest::Client::builder()
        .user_agent(concat!("logship/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("alerts: cannot build the HTTP client")?;
    let compiled = compile(cfg, &http)?;
    // Off the runtime threads and before the first alert needs it.
    runtime.spawn_blocking(fingerprint::warm_up);
    let stats = Arc::new(Stats::default());
    let capacity = cfg.queue_capacity.unwrap_or(DEFAULT_QUEUE).max(1);
    let (events_tx, events_rx) = mpsc::channel(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let rules = Arc::new(RwLock::new(Arc::new(RuleSet {
        gen: 0,
        index: RuleIndex::new(&compiled.rules),
        pending: Mutex::new(None),
    })));
    let inner = Arc::new(Inner {
        rules: rules.clone(),
        events: events_tx,
        queued: queued.clone(),
        capacity,
        control: control_tx,
        stats: stats.clone(),
        http,
    });
    let id = instance_id.to_string();
    runtime.spawn(async move {
        let suppress = suppress::Suppressor::for_config(
            compiled.redis.as_ref(),
            compiled.redis_prefix.as_deref(),
            &id,
            opts.redis_probe,
            stats.clone(),
            shutdown.clone(),
        )
        .await;
        let engine = Engine::new(
            opts.clock,
            id,
            compiled,
            rules,
            suppress,
            stats,
            Arc::new(Inflight::default()),
            opts.redis_probe,
            shutdown,
        );
        engine.run(events_rx, queued, control_rx, opts.tick).await;
    });
    Ok(AlertHandle { inner: Some(inner) })
}

/// Rules and channels from a validated config.
fn compile(cfg: &AlertsConfig, http: &reqwest::Client) -> anyhow::Result<Compiled> {
    let mut rules = Vec::new();
    for r in cfg.rules.iter().filter(|r| r.enabled) {
        rules.push(Rule::compile(r).with_context(|| format!("alert rule {:?}", r.name.get_ref()))?);
    }
    let mut channels = std::collections::BTreeMap::new();
    for (name, c) in &cfg.channels {
        let ch = Channel::compile(name.get_ref(), c, http)?;
        channels.insert(name.get_ref().clone(), Arc::new(ch));
    }
    Ok(Compiled {
        rules,
        channels,
        redis: cfg.redis_target(),
        redis_prefix: cfg.redis_prefix.clone(),
    })
}

impl AlertHandle {
    pub fn disabled() -> AlertHandle {
        AlertHandle { inner: None }
    }

    /// Evaluate the rules' matchers on `event` and hand it to the engine
    /// at once; never blocks. The write path gathers events in a
    /// [`AlertBatch`] instead ([`AlertHandle::batch`]).
    pub fn offer(&self, event: &Event) {
        self.batch().offer(event);
    }

    /// An empty batch for this engine.
    pub fn batch(&self) -> AlertBatch {
        AlertBatch {
            handle: self.clone(),
            pending: Vec::new(),
        }
    }

    /// Apply a new (validated) config to the running engine: rules, channels
    /// and `redis_url`. `queue_capacity` only takes effect on restart.
    /// Events offered from now on are evaluated against the new rules.
    pub fn reconfigure(&self, cfg: &AlertsConfig) -> anyhow::Result<()> {
        let Some(inner) = &self.inner else {
            anyhow::bail!("alerts are disabled in this process; restart to enable them");
        };
        let compiled = compile(cfg, &inner.http)?;
        let index = RuleIndex::new(&compiled.rules);
        let mut current = inner.rules.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(RuleSet {
            gen: current.gen + 1,
            index,
            pending: Mutex::new(Some(Box::new(compiled))),
        });
        drop(current);
        // The engine installs whatever generation is current when it reads
        // this (or sooner, at the first event of a newer one).
        inner
            .control
            .send(Control::Reconfigure)
            .map_err(|_| anyhow::anyhow!("alert engine is not running"))
    }

    /// Wait until every event offered (and, from an [`AlertBatch`],
    /// flushed) before this call is evaluated,
    /// time-based rules are evaluated at the clock's current time, and every
    /// resulting delivery has finished (delivered or finally failed).
    pub async fn sync(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if inner.control.send(Control::Sync(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// This engine's counters.
    pub fn stats(&self) -> Option<Arc<Stats>> {
        self.inner.as_ref().map(|i| i.stats.clone())
    }
}

/// Events offered on the write path and not yet handed to the engine.
/// [`AlertBatch::flush`] hands them over in one queue send; dropping the
/// batch flushes it, so a batch never outlives the pass that filled it.
pub struct AlertBatch {
    handle: AlertHandle,
    pending: Vec<Offered>,
}

impl AlertBatch {
    /// Evaluate the rules' matchers on `event` and keep what the engine
    /// needs; never blocks. An event no matcher matches costs a read lock,
    /// a table lookup and, when a msg rule is left, one literal search over
    /// the message (see [`matching`]). A matched one is kept as its hits
    /// and `ts`, and cloned only when a rule it hit may notify with it.
    /// When the queue has no room for it (counting the events already
    /// waiting here) it is skipped and counted.
    pub fn offer(&mut self, event: &Event) {
        let Some(inner) = &self.handle.inner else {
            return;
        };
        let offered = {
            // A poisoned lock only means a writer panicked mid-swap of an
            // Arc: the value is still a whole Arc, so reading it is fine.
            let rules = inner.rules.read().unwrap_or_else(|p| p.into_inner());
            let hits = rules.index.evaluate(event);
            if !hits.any() {
                return;
            }
            Offered {
                gen: rules.gen,
                ts: event.ts,
                event: rules
                    .index
                    .wants_event(&hits)
                    .then(|| Arc::new(event.clone())),
                hits,
            }
        };
        if inner.queued.load(Ordering::Relaxed) + self.pending.len() >= inner.capacity {
            queue_full(inner, 1);
            return;
        }
        self.pending.push(offered);
        if self.pending.len() >= BATCH_MAX {
            self.flush();
        }
    }

    /// The gathered events, as a batch of their own (to be put back with
    /// [`AlertBatch::take`] too); this one is left empty.
    pub fn take(&mut self) -> AlertBatch {
        AlertBatch {
            handle: self.handle.clone(),
            pending: std::mem::take(&mut self.pending),
        }
    }

    /// Hand the gathered events to the engine.
    pub fn flush(&mut self) {
        let Some(inner) = &self.handle.inner else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let n = batch.len();
        // Counted before the send, so the engine never subtracts events
        // not yet added.
        inner.queued.fetch_add(n, Ordering::Relaxed);
        match inner.events.try_send(batch) {
            Ok(()) => {
                metrics().alert_queue_depth.inc_by(n as i64);
            }
            // Not reached while the event count bounds the queue (every
            // batch holds an event); counted as dropped all the same.
            Err(mpsc::error::TrySendError::Full(_)) => {
                inner.queued.fetch_sub(n, Ordering::Relaxed);
                queue_full(inner, n as u64);
            }
            // The engine stopped (shutdown): nothing to alert on any more.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                inner.queued.fetch_sub(n, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for AlertBatch {
    fn drop(&mut self) {
        self.flush();
    }
}

/// `n` events skipped for a full queue.
fn queue_full(inner: &Inner, n: u64) {
    metrics().dropped("alert_queue_full").inc_by(n);
    inner.stats.queue_full.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        match load_str(Path::new("agent.toml"), text.to_string(), &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.into_iter()
                    .map(|e| (e.line, e.col, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn example_rules_are_valid() {
        let text = include_str!("example.toml");
        let loaded = load_str(Path::new("example.toml"), text.to_string(), &|_| None)
            .unwrap_or_else(|e| panic!("example.toml does not load:\n{e}"));
        assert!(loaded.config.alerts.rules.len() >= 6);
        let http = reqwest::Client::new();
        super::compile(&loaded.config.alerts, &http).unwrap();
    }

    #[test]
    fn mistakes_have_positions() {
        let text = r#"[alerts.channels.webhook]
url = "http://127.0.0.1:9/hook"

[alerts.channels.pager]
type = "pagerduty"

[[alerts.rules]]
name = "a"
channels = ["webhok"]
[alerts.rules.match]
msg = "(unclosed"

[[alerts.rules]]
name = "b"
type = "threshold"
count = 3
window = "0s"
channels = ["webhook"]

[[alerts.rules]]
name = "c"
type = "ratio"
ratio = 1.5
window = "1m"
channels = ["webhook"]
[alerts.rules.base]
tier = "build"
"#;
        let e = errors(text);
        let find = |needle: &str| {
            e.iter()
                .find(|(_, _, m)| m.contains(needle))
                .unwrap_or_else(|| panic!("no error containing {needle:?} in {e:#?}"))
                .clone()
        };
        assert_eq!(find("needs `routing_key`").0, 4);
        let (l, c, m) = find("unknown channel");
        assert_eq!((l, c), (9, 13));
        assert!(m.contains("did you mean \"webhook\""), "{m}");
        assert_eq!(find("invalid regex").0, 11);
        assert_eq!(find("window must be > 0").0, 17);
        assert_eq!(find("outside (0, 1]").0, 23);
    }

    #[test]
    fn channels_are_built_by_check() {
        // Readable, so the key checks pass; not certificates, so only the
        // email channel's constructor can tell.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let text = format!(
            "[alerts.channels.email]\nhost = \"127.0.0.1\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\nca_file = \"{}\"\n",
            ca.display()
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (5, 11), "{e:?}");
        assert!(e[0].2.contains("channel \"email\""), "{e:?}");
    }

    #[test]
    fn debug_output_masks_secrets() {
        let text =
            "[alerts.channels.slack]\nurl = \"https://hooks.slack.com/services/T/B/SECRETPATH\"\n\
                    [alerts.channels.oncall]\ntype = \"pagerduty\"\nrouting_key = \"RKSECRET\"\n";
        let l = load_str(Path::new("a.toml"), text.to_string(), &|_| None).unwrap();
        let dbg = format!("{:?}", l.config.alerts);
        assert!(
            !dbg.contains("SECRETPATH") && !dbg.contains("RKSECRET"),
            "{dbg}"
        );
    }

    #[test]
    fn unknown_keys_rejected_with_suggestion() {
        let e = errors("[alerts.channels.webhook]\nurl = \"http://x/\"\nsecrett = \"s\"\n");
        assert_eq!((e[0].0, e[0].1), (3, 1), "{e:?}");
        assert!(e[0].2.contains("did you mean \"secret\""), "{e:?}");
        let e = errors(
            "[alerts.channels.webhook]\nurl = \"http://x/\"\n[[alerts.rules]]\nname=\"r\"\nchannels=[\"webhook\"]\n[alerts.rules.match]\nlevel = \"error\"\n",
        );
        assert_eq!(e[0].0, 7, "{e:?}");
        let e = errors(
            "[alerts.channels.webhook]\nurl = \"http://x/\"\n[[alerts.rules]]\nname=\"r\"\nchannels=[\"webhook\"]\n[alerts.rules.match]\ntier = [\"build\", \"deplyo\"]\n",
        );
        assert_eq!(e[0].0, 7, "{e:?}");
        assert!(e[0].2.contains("did you mean \"deploy\""), "{e:?}");
        let e = errors("[alerts.channels.ops]\nurl = \"http://x/\"\n");
        assert!(e[0].2.contains("has no type"), "{e:?}");
        let e = errors(
            "[alerts.channels.sms]\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1555\"\nto = [\"555-1234\"]\n",
        );
        assert_eq!((e[0].0, e[0].2.contains("E.164")), (5, true), "{e:?}");
        let e = errors("[alerts.channels.webhook]\nurl = \"http://x/\"\nrouting_key = \"k\"\n");
        assert!(e[0].2.contains("does not apply"), "{e:?}");
    }
}
