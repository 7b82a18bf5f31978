//! The engine task: takes matched events off the queue, accounts them in
//! the rules' windows, decides (with the suppressor) whether to notify, and
//! hands notifications to the channel workers.
//!
//! Matching happened on the write path ([`super::matching`]): a queued
//! [`Offered`] says which matchers the event satisfied, and carries the event
//! only when a rule it hit may need it (an absence hit does not).
//!
//! One task owns all mutable state (windows, per-fingerprint counts,
//! suppression memory), so nothing here locks. It wakes for a batch of
//! events (one write-path pass), a control message (`sync`,
//! `reconfigure`) or a tick (absence and escalation are about time
//! passing, not events). All time comes from the
//! [`Clock`].
//!
//! Fingerprints: an `any` rule's notification is identified per event
//! (SPEC §8: rule, tier, kind, `data.deploymentId`, normalized message).
//! Threshold, ratio and absence rules describe an aggregate, so their
//! fingerprint is the rule's (its name, the match's tier and kind, no
//! message) — otherwise every distinct error in a burst would notify apart.
//!
//! Per fingerprint the engine keeps an [`Episode`]: matches since the last
//! notification (suppressed ones included — that is the `count` of the next
//! notification), when the condition first and last held, and whether it has
//! been escalated. An episode ends when the condition has not held for the
//! rule's grace period (its window, or `suppress_for` for `any` rules).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::channels::{Channel, ChannelSender, Inflight, Notification};
use super::clock::Clock;
use super::config::Severity;
use super::fingerprint::{fingerprint, fingerprint_parts};
use super::matching::{layout, Hits, RuleSlots};
use super::rules::{Kind, Outcome, Rule, Window};
use super::suppress::{Decision, Suppressor};
use super::{current_rules, SharedRules, Stats};
use crate::event::Event;
use crate::ops::metrics::{metrics, RuleLabel};
use crate::ops::redis::RedisTarget;
use crate::ops::shutdown::Shutdown;
use prometheus_client::metrics::counter::Counter;

/// Fingerprints tracked at most before old episodes are dropped early.
const MAX_EPISODES: usize = 100_000;

/// Rules and channels ready to run; built from a validated config.
pub struct Compiled {
    pub rules: Vec<Rule>,
    pub channels: BTreeMap<String, Arc<Channel>>,
    pub redis: Option<RedisTarget>,
    pub redis_prefix: Option<String>,
}

/// One event as the write path hands it over: what matched, and what of
/// the event the engine may need.
#[derive(Debug)]
pub struct Offered {
    /// The rule generation that evaluated it ([`super::RuleSet`]).
    pub gen: u64,
    /// The event's `ts` (an episode's first and last ts).
    pub ts: i64,
    /// The slots ([`layout`]) whose matcher matched.
    pub hits: Hits,
    /// The event, when a rule it hit may notify with it (or fingerprint
    /// it); one clone shared by every rule that fires on it.
    pub event: Option<Arc<Event>>,
}

/// Messages besides events.
pub enum Control {
    /// Finish queued events, evaluate time-based rules at the clock's now,
    /// wait for deliveries in flight, then answer.
    Sync(oneshot::Sender<()>),
    /// A newer rule generation is in force on the write path: install it.
    Reconfigure,
}

/// One fingerprint's story since its last notification.
#[derive(Debug, Default)]
struct Episode {
    rule: usize,
    /// Matches not yet reported.
    count: u64,
    first_ts: Option<i64>,
    last_ts: i64,
    /// Engine time the condition first / last held in this episode.
    started: Option<i64>,
    last_fire: i64,
    /// Engine time of the last notify-or-suppress decision.
    last_attempt: i64,
    escalated: bool,
    event: Option<Arc<Event>>,
}

/// A wall-clock step larger than this is followed ([`Engine::follow_clock_steps`]).
const CLOCK_STEP_MS: i64 = 60_000;

pub struct Engine {
    pub clock: Arc<dyn Clock>,
    pub instance_id: String,
    pub rules: Vec<(Rule, Window)>,
    /// Where each rule's matchers are in an [`Offered`]'s hits.
    slots: Vec<RuleSlots>,
    /// Slot -> rule.
    rule_of_slot: Vec<usize>,
    /// Each rule's fingerprint when it is an aggregate (not `any`): fixed
    /// per rule, so computed once.
    aggregate_fp: Vec<Arc<str>>,
    /// Each rule's `alerts_suppressed` counter, once it was needed.
    suppressed_counter: Vec<Option<Counter>>,
    /// The generation of the installed rules, and where newer ones appear.
    gen: u64,
    shared: SharedRules,
    /// Where event copies go when no episode keeps them.
    /// A notification went to the channel workers since the last check.
    woke_workers: bool,
    pub senders: HashMap<String, ChannelSender>,
    pub suppress: Suppressor,
    pub stats: Arc<Stats>,
    pub inflight: Arc<Inflight>,
    pub redis: Option<RedisTarget>,
    pub probe_interval: Duration,
    pub shutdown: Shutdown,
    episodes: HashMap<String, Episode>,
    /// Wall and monotonic time at the last tick (wall clocks only), to see
    /// the wall clock step.
    last_tick: Option<(i64, std::time::Instant)>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        instance_id: String,
        compiled: Compiled,
        shared: SharedRules,
        suppress: Suppressor,
        stats: Arc<Stats>,
        inflight: Arc<Inflight>,
        probe_interval: Duration,
        shutdown: Shutdown,
    ) -> Engine {
        let mut e = Engine {
            clock,
            instance_id,
            rules: Vec::new(),
            slots: Vec::new(),
            rule_of_slot: Vec::new(),
            aggregate_fp: Vec::new(),
            suppressed_counter: Vec::new(),
            gen: 0,
            shared,
            woke_workers: false,
            senders: HashMap::new(),
            suppress,
            stats,
            inflight,
            redis: compiled.redis.clone(),
            probe_interval,
            shutdown,
            episodes: HashMap::new(),
            last_tick: None,
        };
        // `compiled` is generation 0 ([`super::start_with`]); a reconfigure
        // that came before this engine ran is installed at its first event
        // or control message.
        e.install(compiled);
        e
    }

    /// Replace rules and channels. Windows and episodes start over (a rule
    /// may have changed meaning); suppression memory is kept, so a reload
    /// does not re-notify what was just notified.
    fn install(&mut self, c: Compiled) {
        let now = self.clock.now_ms();
        self.slots = layout(&c.rules);
        self.rule_of_slot = self
            .slots
            .iter()
            .enumerate()
            .flat_map(|(i, s)| std::iter::repeat_n(i, 1 + usize::from(s.base.is_some())))
            .collect();
        self.aggregate_fp = c
            .rules
            .iter()
            .map(|r| Arc::from(aggregate_fingerprint(r)))
            .collect();
        self.suppressed_counter = vec![None; c.rules.len()];
        self.rules = c
            .rules
            .into_iter()
            .map(|r| {
                let w = Window::new(&r, now);
                (r, w)
            })
            .collect();
        self.episodes.clear();
        self.senders = c
            .channels
            .into_values()
            .filter(|ch| ch.enabled)
            .map(|ch| {
                let name = ch.name.clone();
                let s = ChannelSender::spawn(ch, self.inflight.clone(), self.stats.clone());
                (name, s)
            })
            .collect();
    }

    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Vec<Offered>>,
        queued: Arc<AtomicUsize>,
        mut control: mpsc::UnboundedReceiver<Control>,
        tick: Duration,
    ) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = stop.wait() => break,
                Some(c) = control.recv() => match c {
                    Control::Sync(ack) => {
                        while let Ok(batch) = events.try_recv() {
                            self.on_batch(batch, &queued).await;
                        }
                        self.on_tick().await;
                        let inflight = self.inflight.clone();
                        // Answer from a task so the engine keeps running
                        // while deliveries finish.
                        tokio::spawn(async move {
                            inflight.idle().await;
                            let _ = ack.send(());
                        });
                    }
                    Control::Reconfigure => self.catch_up().await,
                },
                batch = events.recv() => {
                    // Closed: every handle is gone, nobody offers any more.
                    let Some(batch) = batch else { break };
                    self.on_batch(batch, &queued).await;
                }
                _ = ticker.tick() => self.on_tick().await,
                else => break,
            }
        }
    }

    /// Evaluate one batch from the write path, in order; then its events
    /// leave the queue's count.
    async fn on_batch(&mut self, batch: Vec<Offered>, queued: &AtomicUsize) {
        let n = batch.len();
        for e in &batch {
            // Most firings in a storm are suppressed by what the
            // suppressor remembers: decided here without building the
            // (large) future of a suppressor round trip.
            if e.gen > self.gen {
                self.catch_up().await;
            }
            let (undecided, now) = self.on_event(e);
            if !undecided.is_empty() {
                self.decide(undecided, e, now).await;
            }
            // Tasks this one woke (channel workers) sit in this worker's
            // LIFO slot, which other workers cannot steal: yield so a
            // storm does not hold every delivery back until the queue is
            // empty.
            if std::mem::take(&mut self.woke_workers) {
                tokio::task::yield_now().await;
            }
        }
        queued.fetch_sub(n, Ordering::Relaxed);
        metrics().alert_queue_depth.dec_by(n as i64);
    }

    /// Install the write path's current rule generation if it is newer.
    async fn catch_up(&mut self) {
        let current = current_rules(&self.shared);
        if current.gen() <= self.gen {
            return;
        }
        // Taken once: only this engine installs generations.
        if let Some(c) = current.take_pending() {
            self.gen = current.gen();
            self.reconfigure(*c).await;
        }
    }

    async fn reconfigure(&mut self, c: Compiled) {
        if c.redis != self.redis {
            self.suppress = Suppressor::for_config(
                c.redis.as_ref(),
                c.redis_prefix.as_deref(),
                &self.instance_id,
                self.probe_interval,
                self.stats.clone(),
                self.shutdown.clone(),
            )
            .await;
            self.redis = c.redis.clone();
        }
        self.install(c);
        tracing::info!(rules = self.rules.len(), "alert rules reloaded");
    }

    /// Account one event in the windows it hit, in rule order; firings
    /// the suppressor's memory does not settle are returned with the time
    /// they fired, to be decided ([`Engine::decide`]) in that order. The
    /// caller first installs the event's rule generation if it is newer
    /// ([`Engine::catch_up`]).
    fn on_event(&mut self, e: &Offered) -> (Vec<(usize, Arc<str>)>, i64) {
        let mut undecided = Vec::new();
        let now = self.clock.now_ms();
        if e.gen != self.gen {
            // Matched by rules no longer in force.
            return (undecided, now);
        }
        // Before the event counts: a step seen first here is not added to
        // the times this event sets.
        self.follow_clock_steps(now);
        // Ascending slots are ascending rules: rules see the event in order.
        let mut last = None;
        for slot in e.hits.iter() {
            let Some(&i) = self.rule_of_slot.get(slot) else {
                continue;
            };
            if last.replace(i) == Some(i) {
                continue;
            }
            let s = self.slots[i];
            let hit = e.hits.has(s.hit);
            let base = s.base.is_some_and(|b| e.hits.has(b));
            let (rule, window) = &mut self.rules[i];
            if window.observe_hits(rule, hit, base, now) != Outcome::Fires {
                continue;
            }
            let fp: Arc<str> = match (&rule.kind, &e.event) {
                (Kind::Any, Some(ev)) => fingerprint(&rule.name, ev).into(),
                // Never: an `any` hit always carries its event.
                (Kind::Any, None) => continue,
                // An aggregate condition is one problem whatever the
                // message of the event that tipped it: identify it by
                // the rule (else every distinct error in a burst would
                // notify on its own).
                _ => self.aggregate_fp[i].clone(),
            };
            let weight = window.weight(now);
            if self.fire_counted(i, &fp, e.event.as_ref(), e.ts, weight, now) {
                undecided.push((i, fp));
            }
        }
        (undecided, now)
    }

    /// Decide the firings [`Engine::on_event`] left, with the suppressor.
    async fn decide(&mut self, undecided: Vec<(usize, Arc<str>)>, e: &Offered, now: i64) {
        for (i, fp) in undecided {
            self.fire_decide(i, &fp, e.event.as_ref(), now).await;
        }
    }

    async fn on_tick(&mut self) {
        let now = self.clock.now_ms();
        self.follow_clock_steps(now);
        for i in 0..self.rules.len() {
            let (rule, window) = &self.rules[i];
            if !matches!(rule.kind, Kind::Absence { .. }) || !window.absent(rule, now) {
                continue;
            }
            let fp = self.aggregate_fp[i].clone();
            // Re-try an ongoing absence once per suppress_for, not per tick.
            let due = self
                .episodes
                .get(&*fp)
                .is_none_or(|ep| ep.started.is_none() || now - ep.last_attempt >= rule.suppress_ms);
            if due {
                self.fire(i, &fp, None, now, 1, now).await;
            } else if let Some(ep) = self.episodes.get_mut(&*fp) {
                // Still absent: keeps the episode alive for escalation.
                ep.last_fire = now;
            }
        }
        self.escalate_and_expire(now).await;
    }

    /// A wall clock that moved more than a minute away from monotonic time
    /// since the last event or tick was stepped: move every window and episode by the
    /// step, so a step forward does not make an absence (or an episode's
    /// end) due, and a step back does not keep old matches in a window.
    fn follow_clock_steps(&mut self, now: i64) {
        if !self.clock.is_wall() {
            return;
        }
        let at = std::time::Instant::now();
        if let Some((wall, then)) = self.last_tick {
            let real = i64::try_from(at.duration_since(then).as_millis()).unwrap_or(i64::MAX);
            let step = (now - wall).saturating_sub(real);
            if step.abs() > CLOCK_STEP_MS {
                tracing::info!(
                    step_ms = step,
                    "wall clock stepped; alert windows follow real time"
                );
                for (_, window) in &mut self.rules {
                    window.shift(step);
                }
                for ep in self.episodes.values_mut() {
                    ep.started = ep.started.map(|t| t + step);
                    ep.last_fire += step;
                    ep.last_attempt += step;
                }
            }
        }
        self.last_tick = Some((now, at));
    }

    /// The condition of rule `i` holds for fingerprint `fp`, at an event
    /// (`e`, when it was needed, and its `ts`) or at a tick (`ts` = now).
    /// `weight`: matches this firing stands for when it opens an episode
    /// (a threshold crossing is `count` matches, not one).
    async fn fire(
        &mut self,
        i: usize,
        fp: &str,
        e: Option<&Arc<Event>>,
        ts: i64,
        weight: u64,
        now: i64,
    ) {
        if self.fire_counted(i, fp, e, ts, weight, now) {
            self.fire_decide(i, fp, e, now).await;
        }
    }

    /// The first half of [`Engine::fire`]: the episode counts the firing,
    /// and one the suppressor's memory suppresses is done with (as its
    /// `acquire` would have answered). True: the suppressor must decide.
    fn fire_counted(
        &mut self,
        i: usize,
        fp: &str,
        e: Option<&Arc<Event>>,
        ts: i64,
        weight: u64,
        now: i64,
    ) -> bool {
        let rule = &self.rules[i].0;
        let grace = grace_ms(rule);
        if !self.episodes.contains_key(fp) {
            self.episodes.insert(fp.to_string(), Episode::default());
        }
        let Some(ep) = self.episodes.get_mut(fp) else {
            return false;
        };
        ep.rule = i;
        if ep.started.is_some_and(|_| now - ep.last_fire > grace) {
            ep.started = None;
            ep.escalated = false;
        }
        ep.count += if ep.started.is_none() { weight } else { 1 };
        ep.started.get_or_insert(now);
        ep.last_fire = now;
        ep.last_attempt = now;
        ep.first_ts.get_or_insert(ts);
        ep.last_ts = ts;
        ep.event = e.cloned();
        if self.suppress.remembered(fp, now) {
            self.suppressed(i);
            return false;
        }
        true
    }

    /// The second half of [`Engine::fire`]: ask the suppressor, notify
    /// unless suppressed.
    async fn fire_decide(&mut self, i: usize, fp: &str, e: Option<&Arc<Event>>, now: i64) {
        let rule = &self.rules[i].0;
        let suppress_ms = rule.suppress_ms;
        if self.suppress.acquire(fp, suppress_ms, now).await == Decision::Suppressed {
            self.suppressed(i);
            return;
        }
        let summary = summary(rule, e.map(|e| &**e));
        self.notify(i, fp, rule.severity, summary);
    }

    fn suppressed(&mut self, i: usize) {
        let counter = self.suppressed_counter[i].get_or_insert_with(|| {
            metrics()
                .alerts_suppressed
                .get_or_create(&RuleLabel {
                    rule: self.rules[i].0.name.clone(),
                })
                .clone()
        });
        counter.inc();
        self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    /// Build the notification from the episode and queue it on the rule's
    /// channels; the episode's count starts over.
    fn notify(&mut self, i: usize, fp: &str, severity: Severity, summary: String) {
        let Some(ep) = self.episodes.get_mut(fp) else {
            return;
        };
        let rule = &self.rules[i].0;
        let n = Arc::new(Notification {
            rule: rule.name.clone(),
            severity,
            fingerprint: fp.to_string(),
            count: ep.count.max(1),
            first_ts: ep.first_ts.unwrap_or(ep.last_ts),
            last_ts: ep.last_ts,
            instance_id: self.instance_id.clone(),
            summary,
            event: ep.event.as_deref().cloned(),
        });
        ep.count = 0;
        ep.first_ts = None;
        self.stats.notified.fetch_add(1, Ordering::Relaxed);
        self.woke_workers = true;
        for ch in &rule.channels {
            if let Some(s) = self.senders.get(ch) {
                s.send(n.clone());
            }
        }
    }

    /// Escalate episodes still firing after `escalate_after`; forget ones
    /// that ended long ago.
    async fn escalate_and_expire(&mut self, now: i64) {
        let mut due = Vec::new();
        self.episodes.retain(|fp, ep| {
            let Some((rule, _)) = self.rules.get(ep.rule) else {
                return false;
            };
            let grace = grace_ms(rule);
            let firing = ep.started.is_some() && now - ep.last_fire <= grace;
            if let (true, Some(after), Some(start)) = (firing, rule.escalate_ms, ep.started) {
                if !ep.escalated && now - start >= after {
                    ep.escalated = true;
                    due.push((ep.rule, fp.clone()));
                }
            }
            // Keep unreported counts and suppression-relevant history a while.
            now - ep.last_fire <= 2 * grace.max(rule.suppress_ms)
        });
        if self.episodes.len() > MAX_EPISODES {
            // A flood of distinct fingerprints: keep only the recent ones
            // (older unreported counts are lost, suppression is not).
            self.episodes.retain(|_, ep| now - ep.last_fire <= 60_000);
        }
        for (i, fp) in due {
            let rule = &self.rules[i].0;
            let key = format!("{fp}:escalated");
            if self.suppress.acquire(&key, rule.suppress_ms, now).await == Decision::Suppressed {
                self.suppressed(i);
                continue;
            }
            let after = rule.escalate_ms.unwrap_or(0);
            let base = match self.episodes.get(&fp) {
                Some(ep) => summary(rule, ep.event.as_deref()),
                None => continue,
            };
            let text = format!(
                "still firing after {}: {base}",
                humantime::format_duration(Duration::from_millis(after as u64))
            );
            let sev = rule.severity.escalated();
            self.notify(i, &fp, sev, text);
        }
    }
}

/// The fingerprint of a threshold, ratio or absence rule: the SPEC §8 parts
/// with the match's tier and kind and an empty message.
fn aggregate_fingerprint(rule: &Rule) -> String {
    let (tier, kind) = rule.matcher.describe();
    fingerprint_parts(&rule.name, &tier, &kind, None, "")
}

/// How long after the condition last held an episode counts as ongoing.
fn grace_ms(rule: &Rule) -> i64 {
    match rule.kind {
        Kind::Any => rule.suppress_ms,
        Kind::Absence { window_ms } => window_ms.max(rule.suppress_ms),
        Kind::Threshold { window_ms, .. } | Kind::Ratio { window_ms, .. } => window_ms,
    }
}

/// One line saying what happened.
fn summary(rule: &Rule, e: Option<&Event>) -> String {
    let msg = e.map_or(String::new(), |e| super::channels::clip(&e.msg, 300));
    let window = rule
        .window_ms()
        .map(|w| humantime::format_duration(Duration::from_millis(w as u64)).to_string())
        .unwrap_or_default();
    match &rule.kind {
        Kind::Any => msg,
        Kind::Threshold { count, .. } => format!("{count}+ matches within {window}: {msg}"),
        Kind::Ratio { ratio, .. } => {
            format!(
                "{:.0}%+ of base events matched within {window}: {msg}",
                ratio * 100.0
            )
        }
        Kind::Absence { .. } => format!("no matching event for {window}"),
    }
}
