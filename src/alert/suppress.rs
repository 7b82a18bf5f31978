//! "Has this fingerprint notified recently, anywhere in the fleet?"
//!
//! The shared answer lives in Redis: the first instance to `SET key NX PX`
//! wins the right to notify for `suppress_for`; the others see the key and
//! learn its remaining TTL in the same round trip (`MULTI SET NX PX; PTTL`).
//! Every answer is also remembered locally (fingerprint -> suppressed until),
//! so a storm costs one Redis round trip per fingerprint per window, not one
//! per event.
//!
//! When Redis cannot be reached, that local memory *is* the suppression
//! (per process): the transition logs exactly one warning and is counted; a
//! background probe PINGs Redis every `probe_interval` and switches back, with
//! one info line, when it answers; the suppressions decided alone meanwhile
//! are then copied into Redis (NX). While Redis is down no event waits on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::Stats;
use crate::ops::redis::{redact_url, RedisTarget};

/// Default key prefix in Redis.
pub const DEFAULT_PREFIX: &str = "logship:alert:";
/// How long one Redis command may take before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// The verdict for one firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Notify,
    Suppressed,
}

/// Fleet-wide suppression with an in-process fallback. Owned by the engine.
pub struct Suppressor {
    /// key -> suppressed until (engine clock, ms).
    local: HashMap<String, i64>,
    redis: Option<Shared>,
    stats: Arc<Stats>,
    /// The reconnect probe; stopped with this suppressor (e.g. on a reload
    /// that changes `redis_url`).
    probe: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Suppressor {
    fn drop(&mut self) {
        if let Some(p) = &self.probe {
            p.abort();
        }
    }
}

/// The Redis side, shared with the probe task.
#[derive(Clone)]
struct Shared {
    url_redacted: String,
    prefix: String,
    client: redis::Client,
    conn: Arc<Mutex<Option<ConnectionManager>>>,
    up: Arc<AtomicBool>,
    /// Set by the probe when Redis returns: the engine then copies what it
    /// suppressed on its own during the outage into Redis.
    resync: Arc<AtomicBool>,
    instance_id: String,
}

impl Suppressor {
    /// In-process only.
    pub fn local(stats: Arc<Stats>) -> Suppressor {
        Suppressor {
            local: HashMap::new(),
            redis: None,
            stats,
            probe: None,
        }
    }

    /// What `alerts.redis_url` asks for: fleet-wide through Redis when set,
    /// in-process when not — and in-process, with a warning, when the URL
    /// cannot be used at all. The one place that decides the fallback.
    pub async fn for_config(
        redis: Option<&RedisTarget>,
        prefix: Option<&str>,
        instance_id: &str,
        probe_interval: Duration,
        stats: Arc<Stats>,
        stop: crate::ops::shutdown::Shutdown,
    ) -> Suppressor {
        let Some(target) = redis else {
            return Suppressor::local(stats);
        };
        match Suppressor::with_redis(
            target,
            prefix,
            instance_id,
            probe_interval,
            stats.clone(),
            stop,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "alerts: suppression is per process");
                Suppressor::local(stats)
            }
        }
    }

    /// Fleet-wide through `url`. Connects (bounded by a timeout) before
    /// returning, so the first events are judged with Redis when it is
    /// there; spawns the probe that restores Redis after an outage. The probe
    /// ends when `stop` fires.
    pub async fn with_redis(
        target: &RedisTarget,
        prefix: Option<&str>,
        instance_id: &str,
        probe_interval: Duration,
        stats: Arc<Stats>,
        mut stop: crate::ops::shutdown::Shutdown,
    ) -> anyhow::Result<Suppressor> {
        let client = target
            .client()
            .map_err(|e| anyhow::anyhow!("alerts.redis_url: {e}"))?;
        let shared = Shared {
            url_redacted: redact_url(&target.url),
            prefix: prefix.unwrap_or(DEFAULT_PREFIX).to_string(),
            client,
            conn: Arc::new(Mutex::new(None)),
            up: Arc::new(AtomicBool::new(false)),
            resync: Arc::new(AtomicBool::new(false)),
            instance_id: instance_id.to_string(),
        };
        if shared.probe().await {
            shared.up.store(true, Ordering::SeqCst);
            stats.redis_up.store(true, Ordering::SeqCst);
        } else {
            shared.went_down(&stats, "could not connect");
        }
        let probe = shared.clone();
        let probe_stats = stats.clone();
        let probe_task = tokio::spawn(async move {
            let mut every = tokio::time::interval(probe_interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.wait() => return,
                    _ = every.tick() => {}
                }
                if !probe.up.load(Ordering::SeqCst) && probe.probe().await {
                    probe.resync.store(true, Ordering::SeqCst);
                    probe.up.store(true, Ordering::SeqCst);
                    probe_stats.redis_up.store(true, Ordering::SeqCst);
                    tracing::info!(redis = %probe.url_redacted, "Redis reachable again; alert suppression is fleet-wide again");
                }
            }
        });
        Ok(Suppressor {
            local: HashMap::new(),
            redis: Some(shared),
            stats,
            probe: Some(probe_task),
        })
    }

    /// Is `key` suppressed at `now` by what this process remembers (its own
    /// decisions and the TTLs Redis reported)? Then [`Suppressor::acquire`]
    /// answers `Suppressed` without a round trip.
    pub fn remembered(&self, key: &str, now: i64) -> bool {
        self.local.get(key).is_some_and(|&until| until > now)
    }

    /// May `key` notify now? If yes, it is suppressed for `for_ms` from now
    /// (fleet-wide when Redis is up).
    pub async fn acquire(&mut self, key: &str, for_ms: i64, now: i64) -> Decision {
        if self.remembered(key, now) {
            return Decision::Suppressed;
        }
        if self.local.len() > 50_000 {
            self.local.retain(|_, until| *until > now);
        }
        let for_ms = for_ms.max(1);
        if let Some(r) = &self.redis {
            if r.up.load(Ordering::SeqCst) && r.resync.swap(false, Ordering::SeqCst) {
                r.push_local(&self.local, now).await;
            }
            if r.up.load(Ordering::SeqCst) {
                match r.set_nx(key, for_ms).await {
                    Ok(None) => {
                        self.local.insert(key.to_string(), now + for_ms);
                        return Decision::Notify;
                    }
                    Ok(Some(ttl_ms)) => {
                        self.local.insert(key.to_string(), now + ttl_ms.max(1));
                        return Decision::Suppressed;
                    }
                    Err(e) => r.went_down(&self.stats, &e),
                }
            }
        }
        self.local.insert(key.to_string(), now + for_ms);
        Decision::Notify
    }
}

impl Shared {
    /// `Ok(None)`: we set the key (notify). `Ok(Some(ttl))`: someone else
    /// holds it for `ttl` more ms.
    async fn set_nx(&self, key: &str, for_ms: i64) -> Result<Option<i64>, String> {
        let full = format!("{}{key}", self.prefix);
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return Err("not connected".into());
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&full)
            .arg(&self.instance_id)
            .arg("NX")
            .arg("PX")
            .arg(for_ms)
            .cmd("PTTL")
            .arg(&full);
        let fut = pipe.query_async::<(Option<String>, i64)>(conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
            Err(_) => Err("timed out".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok((Some(_), _))) => Ok(None),
            // PTTL of a key without expiry (-1) or gone (-2): treat as the
            // full window, never as "notify twice".
            Ok(Ok((None, ttl))) => Ok(Some(if ttl > 0 { ttl } else { for_ms })),
        }
    }

    /// After an outage: publish the suppressions this process decided alone
    /// (NX, so a key another instance set meanwhile wins), so the fleet does
    /// not notify again what was notified here during the outage.
    async fn push_local(&self, local: &HashMap<String, i64>, now: i64) {
        let mut pipe = redis::pipe();
        let mut n = 0;
        for (key, until) in local.iter().filter(|(_, u)| **u > now) {
            pipe.cmd("SET")
                .arg(format!("{}{key}", self.prefix))
                .arg(&self.instance_id)
                .arg("NX")
                .arg("PX")
                .arg(until - now)
                .ignore();
            n += 1;
        }
        if n == 0 {
            return;
        }
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return;
        };
        let fut = pipe.query_async::<()>(conn);
        match tokio::time::timeout(COMMAND_TIMEOUT * 5, fut).await {
            Ok(Ok(())) => tracing::debug!(keys = n, "alert suppressions copied to Redis"),
            // Not fatal: at worst the fleet notifies once more.
            _ => tracing::debug!("could not copy alert suppressions to Redis"),
        }
    }

    /// Connect if needed and PING. Any failure is `false`.
    async fn probe(&self) -> bool {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(COMMAND_TIMEOUT)
                .set_response_timeout(COMMAND_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(500);
            let made = tokio::time::timeout(
                COMMAND_TIMEOUT * 2,
                ConnectionManager::new_with_config(self.client.clone(), cfg),
            )
            .await;
            match made {
                Ok(Ok(c)) => *guard = Some(c),
                _ => return false,
            }
        }
        let Some(conn) = guard.as_mut() else {
            return false;
        };
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(conn);
        matches!(tokio::time::timeout(COMMAND_TIMEOUT, ping).await, Ok(Ok(_)))
    }

    /// The one place that switches to in-process suppression: one warning
    /// per outage, counted.
    fn went_down(&self, stats: &Stats, why: &str) {
        if self.up.swap(false, Ordering::SeqCst)
            || stats.redis_fallbacks.load(Ordering::SeqCst) == 0
        {
            stats.redis_up.store(false, Ordering::SeqCst);
            stats.redis_fallbacks.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(
                redis = %self.url_redacted,
                error = %why,
                "Redis unreachable; alert suppression falls back to this process until it returns"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_suppression_window() {
        let mut s = Suppressor::local(Arc::new(Stats::default()));
        assert_eq!(s.acquire("k", 1000, 0).await, Decision::Notify);
        assert_eq!(s.acquire("k", 1000, 999).await, Decision::Suppressed);
        assert_eq!(s.acquire("k", 1000, 1000).await, Decision::Notify);
        assert_eq!(s.acquire("other", 1000, 1000).await, Decision::Notify);
    }
}
