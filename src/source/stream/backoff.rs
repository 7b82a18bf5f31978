//! When to try again after a stream failed (SPEC §11: 1 s doubling to
//! 60 s, with jitter), and how long a rate-limit answer asks us to wait.
//!
//! Jitter is "equal jitter": the wait is drawn from the upper half of the
//! current step, so a fleet restarted together spreads out while no client
//! ever retries faster than half the step. The step grows only while
//! attempts make no progress; a connection that delivered events resets it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

pub const FIRST: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(60);
/// A rate-limit reset further away than this is not believed.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// Exponential backoff with jitter.
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
    rng: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Different per task even when started in the same nanosecond.
        let salt = &seed as *const u64 as u64;
        Backoff {
            step: FIRST,
            rng: xxhash_rust::xxh3::xxh3_64(&[seed.to_le_bytes(), salt.to_le_bytes()].concat()) | 1,
        }
    }

    /// The wait before the next attempt; the one after it is longer.
    pub fn next_wait(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(MAX);
        let half = step / 2;
        half + half.mul_f64(self.unit())
    }

    /// The last attempt made progress: start again from [`FIRST`].
    pub fn reset(&mut self) {
        self.step = FIRST;
    }

    /// A uniform value in [0, 1) (xorshift64*).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (r >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long a 429 (or 503) answer asks to wait: `retry-after` in seconds,
/// or `x-ratelimit-reset` as Unix seconds, whichever is later; `None` if
/// neither is there or readable.
pub fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let after = num("retry-after").map(Duration::from_secs);
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let reset = num("x-ratelimit-reset").map(|r| Duration::from_secs(r.saturating_sub(now_s)));
    let wait = after.max(reset)?;
    Some(wait.min(MAX_RATE_LIMIT_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_sixty_seconds_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..9).map(|_| b.next_wait()).collect();
        let steps = [1, 2, 4, 8, 16, 32, 60, 60, 60];
        for (w, s) in waits.iter().zip(steps) {
            let s = Duration::from_secs(s);
            assert!(*w >= s / 2 && *w <= s, "{w:?} for step {s:?}");
        }
        b.reset();
        assert!(b.next_wait() <= FIRST);
    }

    #[test]
    fn rate_limit_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(&h, now), None);
        h.insert("x-ratelimit-reset", "1007".parse().unwrap());
        assert_eq!(rate_limit_wait(&h, now), Some(Duration::from_secs(7)));
        h.insert("retry-after", "9".parse().unwrap());
        assert_eq!(rate_limit_wait(&h, now), Some(Duration::from_secs(9)));
        h.insert("retry-after", "99999".parse().unwrap());
        assert_eq!(rate_limit_wait(&h, now), Some(MAX_RATE_LIMIT_WAIT));
    }
}
