//! The engine's one notion of "now", so tests can move time by hand.
//!
//! Windows, absence, escalation and in-process suppression all read
//! [`Clock::now_ms`]; nothing in the engine calls `SystemTime` itself. Tests
//! start the engine with a [`ManualClock`], advance it, then call
//! `AlertHandle::sync` to make the engine evaluate at the new time — no
//! sleeping as synchronization. (Redis TTLs run on Redis's own clock.)

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Milliseconds since the Unix epoch, as the engine sees them.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
    /// The real wall clock, which can be stepped (NTP, a resumed VM): the
    /// engine then compares it with monotonic time at each tick and moves
    /// its windows by a step. A test clock moves only when told, so
    /// `false`.
    fn is_wall(&self) -> bool {
        false
    }
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// The agent's one wall clock ([`crate::pipeline::now_ms`]), so the
    /// engine and the write path agree on "now" (also under the debug-build
    /// test clock).
    fn now_ms(&self) -> i64 {
        crate::pipeline::now_ms()
    }

    fn is_wall(&self) -> bool {
        true
    }
}

/// A clock that only moves when told to; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
