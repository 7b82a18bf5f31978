//! Where notifications go: six channel types behind one [`Deliver`] trait,
//! and the one place that paces and retries deliveries.
//!
//! Each enabled channel gets a worker task with its own bounded queue, so a
//! slow or failing channel never holds up the engine or the other channels.
//! The worker paces deliveries with a token bucket (`rate_limit`, default
//! 50/s) and runs each delivery as its own task (at most
//! [`MAX_CONCURRENT`] at a time), so one notification in backoff does not
//! block the next. A delivery is retried on 5xx, 408, 429, timeouts and
//! connection errors with exponential backoff and jitter, at most
//! `max_attempts` times; then it counts in
//! `alert_delivery_failures_total{channel}`. Successful deliveries count in
//! `alerts_triggered_total{severity,channel}`.
//!
//! Secrets (webhook URLs of Slack/Discord, routing keys, tokens, passwords)
//! never reach a log line: HTTP errors are logged without their URL.

mod discord;
mod email;
mod pagerduty;
mod slack;
mod sms;
mod webhook;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::config::{ChannelConfig, ChannelKind, Severity};
use super::Stats;
use crate::event::Event;
use crate::ops::metrics::{metrics, AlertLabel, ChannelLabel};

/// Deliveries of one channel running at the same time, at most.
pub const MAX_CONCURRENT: usize = 16;
/// Notifications waiting per channel; beyond, a notification counts failed.
const CHANNEL_QUEUE: usize = 1024;

/// What every channel is told (the generic webhook's payload, SPEC §8).
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub rule: String,
    pub severity: Severity,
    pub fingerprint: String,
    /// Matches since the previous notification of this fingerprint,
    /// suppressed ones included.
    pub count: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    #[serde(rename = "instanceId")]
    pub instance_id: String,
    pub summary: String,
    /// The event that fired; `null` for an absence rule.
    pub event: Option<Event>,
}

impl Notification {
    /// One line for chat and SMS: `[HIGH] rule: summary (x3)`.
    pub fn headline(&self) -> String {
        let mut s = format!(
            "[{}] {}: {}",
            self.severity.as_str().to_uppercase(),
            self.rule,
            self.summary
        );
        if self.count > 1 {
            s.push_str(&format!(" (x{})", self.count));
        }
        s
    }
}

/// Why an attempt failed, and whether trying again may help.
#[derive(Debug)]
pub enum DeliveryError {
    Retry(String),
    Fail(String),
}

/// One channel type's way of sending.
#[async_trait::async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError>;
}

/// A configured channel.
pub struct Channel {
    pub name: String,
    pub enabled: bool,
    deliver: Box<dyn Deliver>,
    policy: RetryPolicy,
    rate_per_sec: f64,
}

/// Bounded attempts with exponential backoff.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_attempts: u32,
    initial: Duration,
    max: Duration,
}

impl Channel {
    /// Build a validated channel config. `name` is the table name.
    pub fn compile(
        name: &str,
        c: &ChannelConfig,
        http: &reqwest::Client,
    ) -> anyhow::Result<Channel> {
        let timeout = c
            .timeout
            .as_ref()
            .map_or(Duration::from_secs(10), |t| t.get_ref().get());
        let s = |v: &Option<toml::Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        let need = |v: &Option<toml::Spanned<String>>, key: &str| {
            s(v).ok_or_else(|| anyhow::anyhow!("channel {name:?} needs `{key}`"))
        };
        let to =
            c.to.as_ref()
                .map(|t| t.get_ref().clone())
                .unwrap_or_default();
        let deliver: Box<dyn Deliver> = match c.kind(name)? {
            ChannelKind::Webhook => Box::new(webhook::Webhook::new(
                http.clone(),
                need(&c.url, "url")?,
                s(&c.secret),
                s(&c.signature_header),
                timeout,
            )),
            ChannelKind::Slack => Box::new(slack::Slack::new(
                http.clone(),
                need(&c.url, "url")?,
                timeout,
            )),
            ChannelKind::Discord => Box::new(discord::Discord::new(
                http.clone(),
                need(&c.url, "url")?,
                timeout,
            )),
            ChannelKind::PagerDuty => Box::new(pagerduty::PagerDuty::new(
                http.clone(),
                s(&c.api_url),
                need(&c.routing_key, "routing_key")?,
                timeout,
            )),
            ChannelKind::Email => Box::new(email::Email::new(
                &need(&c.host, "host")?,
                c.port.as_ref().map(|p| *p.get_ref()),
                c.tls.as_ref().map(|t| *t.get_ref()).unwrap_or_default(),
                c.ca_file.as_ref().map(|f| f.get_ref().as_str()),
                s(&c.username).zip(s(&c.password)),
                &need(&c.from, "from")?,
                &to,
                timeout,
            )?),
            ChannelKind::Sms => Box::new(sms::Sms::new(
                http.clone(),
                s(&c.api_url),
                need(&c.account_sid, "account_sid")?,
                need(&c.auth_token, "auth_token")?,
                need(&c.from, "from")?,
                to,
                timeout,
            )),
        };
        Ok(Channel {
            name: name.to_string(),
            enabled: c.enabled,
            deliver,
            policy: RetryPolicy {
                max_attempts: c.max_attempts.as_ref().map_or(5, |a| *a.get_ref()).max(1),
                initial: c
                    .retry_initial
                    .as_ref()
                    .map_or(Duration::from_millis(500), |d| d.get_ref().get()),
                max: c
                    .retry_max
                    .as_ref()
                    .map_or(Duration::from_secs(30), |d| d.get_ref().get()),
            },
            rate_per_sec: c.rate_limit.as_ref().map_or(50.0, |r| *r.get_ref()),
        })
    }
}

/// Counts deliveries not yet finished, so `sync` can wait for them.
#[derive(Debug, Default)]
pub struct Inflight {
    n: AtomicUsize,
    idle: Notify,
}

impl Inflight {
    fn begin(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        if self.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Resolves when no delivery is queued or running.
    pub async fn idle(&self) {
        loop {
            let wait = self.idle.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            if self.n.load(Ordering::SeqCst) == 0 {
                return;
            }
            wait.await;
        }
    }
}

/// The engine's handle on a channel worker.
pub struct ChannelSender {
    name: String,
    tx: mpsc::Sender<Arc<Notification>>,
    inflight: Arc<Inflight>,
}

impl ChannelSender {
    /// Start the worker for `channel`; it ends when this sender is dropped
    /// and its queue is drained.
    pub fn spawn(
        channel: Arc<Channel>,
        inflight: Arc<Inflight>,
        stats: Arc<Stats>,
    ) -> ChannelSender {
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
        let name = channel.name.clone();
        tokio::spawn(worker(channel, rx, inflight.clone(), stats));
        ChannelSender { name, tx, inflight }
    }

    /// Queue a notification; never waits.
    pub fn send(&self, n: Arc<Notification>) {
        self.inflight.begin();
        if let Err(e) = self.tx.try_send(n) {
            self.inflight.end();
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "channel worker stopped",
            };
            tracing::warn!(channel = %self.name, "alert not delivered: {why}");
            failed(&self.name);
        }
    }
}

fn failed(channel: &str) {
    metrics()
        .alert_delivery_failures
        .get_or_create(&ChannelLabel {
            channel: channel.to_string(),
        })
        .inc();
}

async fn worker(
    ch: Arc<Channel>,
    mut rx: mpsc::Receiver<Arc<Notification>>,
    inflight: Arc<Inflight>,
    stats: Arc<Stats>,
) {
    let mut bucket = TokenBucket::new(ch.rate_per_sec);
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
    while let Some(n) = rx.recv().await {
        bucket.take().await;
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            inflight.end();
            continue;
        };
        let (ch, inflight, stats) = (ch.clone(), inflight.clone(), stats.clone());
        tokio::spawn(async move {
            deliver_with_retries(&ch, &n, &stats).await;
            drop(permit);
            inflight.end();
        });
    }
}

/// The one retry loop for notifications.
async fn deliver_with_retries(ch: &Channel, n: &Notification, stats: &Stats) {
    let mut backoff = ch.policy.initial;
    let mut attempt = 1;
    let why = loop {
        match ch.deliver.deliver(n).await {
            Ok(()) => {
                metrics()
                    .alerts_triggered
                    .get_or_create(&AlertLabel {
                        severity: n.severity.as_str().to_string(),
                        channel: ch.name.clone(),
                    })
                    .inc();
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(DeliveryError::Fail(why)) => break why,
            Err(DeliveryError::Retry(why)) if attempt >= ch.policy.max_attempts => break why,
            Err(DeliveryError::Retry(why)) => {
                tracing::debug!(channel = %ch.name, rule = %n.rule, attempt, error = %why, "alert delivery failed; retrying");
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(ch.policy.max);
                attempt += 1;
            }
        }
    };
    tracing::warn!(channel = %ch.name, rule = %n.rule, attempts = attempt, error = %why, "alert not delivered");
    stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
    failed(&ch.name);
}

/// Between half and all of `d`, so agents that failed together do not retry
/// in step. Randomness from the clock's nanoseconds and a per-process
/// counter is plenty for spreading retries.
fn jitter(d: Duration) -> Duration {
    static SALT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos() as u64)
        .unwrap_or(0);
    let mixed = (nanos
        ^ (SALT.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    d.mul_f64(0.5 + ((mixed >> 40) % 1000) as f64 / 2000.0)
}

/// Up to `rate` deliveries per second, bursts of up to `rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> TokenBucket {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            50.0
        };
        TokenBucket {
            rate,
            tokens: rate.max(1.0),
            last: tokio::time::Instant::now(),
        }
    }

    async fn take(&mut self) {
        loop {
            let now = tokio::time::Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.rate.max(1.0));
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let wait = (1.0 - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// Send one HTTP request and classify the answer.
pub(crate) async fn send_http(req: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
    match req.send().await {
        // Connection refused/reset, timeouts, DNS: maybe transient. The URL
        // is stripped because for Slack/Discord it is the secret.
        Err(e) => Err(DeliveryError::Retry(e.without_url().to_string())),
        Ok(resp) => {
            let status = resp.status();
            // Reading the body lets the connection be reused; a short error
            // body (Slack says e.g. "invalid_payload") helps the operator.
            let body = resp.bytes().await.unwrap_or_default();
            let detail = || {
                let text = String::from_utf8_lossy(&body);
                let text = clip(text.trim(), 200);
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {text}")
                }
            };
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(DeliveryError::Retry(detail()))
            } else {
                Err(DeliveryError::Fail(detail()))
            }
        }
    }
}

/// At most `max` bytes of `s`, cut on a char boundary, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max.saturating_sub(3);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_respects_chars() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééééé", 6), "é…");
    }

    /// Virtual time: the bucket's waits are exact, not measured.
    #[tokio::test(start_paused = true)]
    async fn rate_limit_paces_after_the_burst() {
        let mut b = TokenBucket::new(2.0);
        let start = tokio::time::Instant::now();
        for _ in 0..6 {
            b.take().await;
        }
        // A burst of 2, then one every 500ms.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }
}
