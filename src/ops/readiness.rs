//! "Should an orchestrator consider this agent ready?" (`GET /readyz`).
//!
//! The pipeline sets facts as they change — config loaded, sources watched,
//! uploads failing since when, stopping — and the endpoint judges them at
//! request time. The state is a handful of atomics behind one `Arc`, so the
//! setters are cheap enough for the upload loop and never block the server.
//!
//! Why "failing for longer than a duration" and not "failing now": a single
//! failed PUT is normal (retries exist for that); a store that has been
//! unreachable for minutes means data piles up on disk and someone should
//! look. `max_upload_failing` draws that line (default 5 minutes). Event
//! streams (SPEC §11) are judged the same way, each against its source's
//! `not_ready_after`; their state is computed by `source::stream::Health`
//! and set here once a second.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::disk::DiskProblem;

/// How long uploads may keep failing before `/readyz` says 503.
pub const DEFAULT_MAX_UPLOAD_FAILING: Duration = Duration::from_secs(300);

/// Shared readiness facts; clone freely, all clones see the same state.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// Instants are stored as milliseconds since this one (plus one, so that
    /// zero can mean "not failing").
    base: Instant,
    config_loaded: AtomicBool,
    sources_watched: AtomicBool,
    stopping: AtomicBool,
    /// 0 = uploads healthy; else 1 + ms from `base` to the first failure.
    failing_since: AtomicU64,
    max_failing_ms: AtomicU64,
    /// 0 = data_dir writable; else 1 + index in [`DiskProblem::ALL`].
    data_dir: AtomicU8,
    /// An event stream failing past its limit: (source, for, limit).
    stream_failing: Mutex<Option<(String, Duration, Duration)>>,
}

/// Why the agent is not ready; its `Display` is the 503 body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReady {
    ConfigNotLoaded,
    SourcesNotWatched,
    UploadsFailing {
        for_: Duration,
        max: Duration,
    },
    /// Reading is paused: data_dir takes no writes.
    DataDir(DiskProblem),
    StreamFailing {
        source: String,
        for_: Duration,
        max: Duration,
    },
    Stopping,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::ConfigNotLoaded => write!(f, "config not loaded"),
            NotReady::SourcesNotWatched => write!(f, "sources not watched yet"),
            NotReady::UploadsFailing { for_, max } => write!(
                f,
                "uploads failing for {}s (limit {}s); see logship_upload_failures_total and the agent log",
                for_.as_secs(),
                max.as_secs()
            ),
            NotReady::DataDir(p) => write!(
                f,
                "{p}; reading paused, nothing lost (see logship_data_dir_blocked): {}",
                p.hint()
            ),
            NotReady::StreamFailing { source, for_, max } => write!(
                f,
                "event stream of source {source:?} failing for {}s (limit {}s); see logship_stream_reconnects_total and the agent log",
                for_.as_secs(),
                max.as_secs()
            ),
            NotReady::Stopping => write!(f, "shutting down"),
        }
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(DEFAULT_MAX_UPLOAD_FAILING)
    }
}

impl Readiness {
    /// Nothing is ready yet; uploads count as failing after `max_upload_failing`.
    pub fn new(max_upload_failing: Duration) -> Readiness {
        Readiness {
            inner: Arc::new(State {
                base: Instant::now(),
                config_loaded: AtomicBool::new(false),
                sources_watched: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                failing_since: AtomicU64::new(0),
                max_failing_ms: AtomicU64::new(millis(max_upload_failing)),
                data_dir: AtomicU8::new(0),
                stream_failing: Mutex::new(None),
            }),
        }
    }

    pub fn set_config_loaded(&self) {
        self.inner.config_loaded.store(true, Ordering::Relaxed);
    }

    pub fn set_sources_watched(&self, watched: bool) {
        self.inner.sources_watched.store(watched, Ordering::Relaxed);
    }

    /// From now on `/readyz` answers 503 ("shutting down").
    pub fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
    }

    /// A new limit, e.g. after a config reload.
    pub fn set_max_upload_failing(&self, max: Duration) {
        self.inner
            .max_failing_ms
            .store(millis(max), Ordering::Relaxed);
    }

    /// `Some(t)`: uploads have failed continuously since `t`; `None`: healthy.
    pub fn set_upload_failing_since(&self, since: Option<Instant>) {
        let v = since.map_or(0, |t| self.encode(t));
        self.inner.failing_since.store(v, Ordering::Relaxed);
    }

    /// `Some(p)`: reading is paused because data_dir takes no writes.
    pub fn set_data_dir(&self, problem: Option<DiskProblem>) {
        let v = problem.map_or(0, |p| {
            1 + DiskProblem::ALL.iter().position(|&q| q == p).unwrap_or(0) as u8
        });
        self.inner.data_dir.store(v, Ordering::Relaxed);
    }

    /// `Some((source, for, limit))`: that event stream has failed for
    /// longer than its limit; `None`: all streams are fine.
    pub fn set_stream_failing(&self, failing: Option<(String, Duration, Duration)>) {
        if let Ok(mut f) = self.inner.stream_failing.lock() {
            *f = failing;
        }
    }

    /// `Ok(())` when ready at `now`, else the first reason it is not.
    pub fn check(&self, now: Instant) -> Result<(), NotReady> {
        let s = &self.inner;
        if s.stopping.load(Ordering::Relaxed) {
            return Err(NotReady::Stopping);
        }
        if !s.config_loaded.load(Ordering::Relaxed) {
            return Err(NotReady::ConfigNotLoaded);
        }
        if !s.sources_watched.load(Ordering::Relaxed) {
            return Err(NotReady::SourcesNotWatched);
        }
        let disk = s.data_dir.load(Ordering::Relaxed);
        if let Some(&p) = DiskProblem::ALL.get(usize::from(disk).wrapping_sub(1)) {
            return Err(NotReady::DataDir(p));
        }
        let since = s.failing_since.load(Ordering::Relaxed);
        if since != 0 {
            let start = s.base + Duration::from_millis(since - 1);
            let for_ = now.saturating_duration_since(start);
            let max = Duration::from_millis(s.max_failing_ms.load(Ordering::Relaxed));
            if for_ > max {
                return Err(NotReady::UploadsFailing { for_, max });
            }
        }
        if let Some((source, for_, max)) = s.stream_failing.lock().ok().and_then(|f| f.clone()) {
            return Err(NotReady::StreamFailing { source, for_, max });
        }
        Ok(())
    }

    fn encode(&self, t: Instant) -> u64 {
        // Instants before `base` (possible for caller-supplied ones) clamp to it.
        millis(t.saturating_duration_since(self.inner.base)) + 1
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Readiness {
        let r = Readiness::new(Duration::from_secs(60));
        r.set_config_loaded();
        r.set_sources_watched(true);
        r
    }

    #[test]
    fn not_ready_until_config_and_sources() {
        let r = Readiness::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(r.check(now), Err(NotReady::ConfigNotLoaded));
        r.set_config_loaded();
        assert_eq!(r.check(now), Err(NotReady::SourcesNotWatched));
        r.set_sources_watched(true);
        assert_eq!(r.check(now), Ok(()));
        r.set_sources_watched(false);
        assert_eq!(r.check(now), Err(NotReady::SourcesNotWatched));
    }

    #[test]
    fn upload_failures_matter_only_past_the_limit() {
        let r = ready();
        let start = Instant::now();
        r.set_upload_failing_since(Some(start));
        assert_eq!(r.check(start + Duration::from_secs(59)), Ok(()));
        let err = r.check(start + Duration::from_secs(61)).unwrap_err();
        assert!(matches!(err, NotReady::UploadsFailing { .. }), "{err}");
        assert!(err.to_string().contains("limit 60s"), "{err}");
        r.set_upload_failing_since(None);
        assert_eq!(r.check(start + Duration::from_secs(600)), Ok(()));
    }

    #[test]
    fn a_zero_limit_is_exceeded_by_any_failure() {
        let r = ready();
        let start = Instant::now();
        r.set_upload_failing_since(Some(start));
        r.set_max_upload_failing(Duration::ZERO);
        assert!(r.check(start + Duration::from_millis(10)).is_err());
    }

    #[test]
    fn a_blocked_data_dir_is_not_ready_until_cleared() {
        let r = ready();
        let now = Instant::now();
        r.set_data_dir(Some(DiskProblem::ReadOnly));
        let err = r.check(now).unwrap_err();
        assert_eq!(err, NotReady::DataDir(DiskProblem::ReadOnly));
        assert!(err.to_string().contains("read-only"), "{err}");
        r.set_data_dir(Some(DiskProblem::NoSpace));
        assert_eq!(r.check(now), Err(NotReady::DataDir(DiskProblem::NoSpace)));
        r.set_data_dir(None);
        assert_eq!(r.check(now), Ok(()));
    }

    #[test]
    fn a_failing_stream_is_not_ready() {
        let r = ready();
        let d = Duration::from_secs(1);
        r.set_stream_failing(Some(("vercel".into(), d * 400, d * 300)));
        let err = r.check(Instant::now()).unwrap_err();
        assert!(
            err.to_string().contains("\"vercel\" failing for 400s"),
            "{err}"
        );
        r.set_stream_failing(None);
        assert_eq!(r.check(Instant::now()), Ok(()));
    }

    #[test]
    fn stopping_wins() {
        let r = ready();
        r.set_stopping();
        assert_eq!(r.check(Instant::now()), Err(NotReady::Stopping));
    }
}
