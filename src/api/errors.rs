//! `/api/errors`: events of level `error` grouped by their normalized
//! message — the alert engine's normalization ([`crate::alert::fingerprint::normalize`]),
//! so a group here is what one alert fingerprint would cover.
//!
//! Where the events come from:
//! - without `since`: the live groups, fed from the durable-event tap since
//!   the agent started (cheap, always current);
//! - with `since`: a query over `[since, now)` of the stored events (local
//!   segments and bucket, every tier unless `tier` is given), grouped per
//!   request — so the answer covers what was written before this process
//!   started too.
//!
//! Memory is bounded either way: at most `max_error_signatures` groups are
//! tracked; a new signature beyond that evicts the least frequent one
//! (its count is lost, so counts are exact only while the distinct
//! signatures fit, and approximate in the long tail beyond it).

use std::collections::HashMap;

use bytes::Bytes;
use serde::Serialize;

use crate::alert::fingerprint::normalize;
use crate::event::{Event, Level, Tier};

/// One group.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub tier: Tier,
    /// The normalized message.
    pub signature: String,
    pub count: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    /// The most recent event of the group (redacted, as written).
    pub sample: serde_json::Value,
}

/// Error groups with a cap on distinct signatures.
pub struct Groups {
    cap: usize,
    groups: HashMap<(Tier, String), Slot>,
}

struct Slot {
    count: u64,
    first_ts: i64,
    last_ts: i64,
    sample: Bytes,
}

impl Groups {
    pub fn new(cap: usize) -> Groups {
        Groups {
            cap: cap.max(1),
            groups: HashMap::new(),
        }
    }

    /// Count `event` if it is an error; `line` is its NDJSON line.
    pub fn add(&mut self, event: &Event, line: &Bytes) {
        if event.lvl != Level::Error {
            return;
        }
        let key = (event.tier, normalize(&event.msg).into_owned());
        if let Some(s) = self.groups.get_mut(&key) {
            s.count += 1;
            s.first_ts = s.first_ts.min(event.ts);
            if event.ts >= s.last_ts {
                s.last_ts = event.ts;
                s.sample = line.clone();
            }
            return;
        }
        if self.groups.len() >= self.cap {
            self.evict_least_frequent();
        }
        self.groups.insert(
            key,
            Slot {
                count: 1,
                first_ts: event.ts,
                last_ts: event.ts,
                sample: line.clone(),
            },
        );
    }

    fn evict_least_frequent(&mut self) {
        // A linear scan, only when a new signature arrives at the cap.
        if let Some(k) = self
            .groups
            .iter()
            .min_by_key(|(_, s)| (s.count, s.last_ts))
            .map(|(k, _)| k.clone())
        {
            self.groups.remove(&k);
        }
    }

    /// The `limit` largest groups (of `tier`, when given), most frequent
    /// first, ties by most recent.
    pub fn top(&self, tier: Option<Tier>, limit: usize) -> Vec<Group> {
        let mut v: Vec<_> = self
            .groups
            .iter()
            .filter(|((t, _), _)| tier.is_none_or(|w| *t == w))
            .collect();
        v.sort_by(|a, b| {
            b.1.count
                .cmp(&a.1.count)
                .then(b.1.last_ts.cmp(&a.1.last_ts))
                .then(a.0.cmp(b.0))
        });
        v.into_iter()
            .take(limit)
            .map(|((t, sig), s)| Group {
                tier: *t,
                signature: sig.clone(),
                count: s.count,
                first_ts: s.first_ts,
                last_ts: s.last_ts,
                sample: serde_json::from_slice(&s.sample).unwrap_or(serde_json::Value::Null),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(ts: i64, msg: &str) -> (Event, Bytes) {
        let mut e = Event::empty(Tier::Build);
        (e.ts, e.lvl, e.msg) = (ts, Level::Error, msg.into());
        let line = Bytes::from(e.to_json());
        (e, line)
    }

    #[test]
    fn groups_by_normalized_message_with_a_cap() {
        let mut g = Groups::new(2);
        for (ts, m) in [
            (5, "build 7f3a9c21e0 failed"),
            (3, "build 0b1c2d3e4f failed"),
            (9, "disk full"),
            (1, "build aaaaaaaaaa failed"),
        ] {
            let (e, l) = err(ts, m);
            g.add(&e, &l);
        }
        let mut info = Event::empty(Tier::Build);
        info.msg = "build 1234567 failed".into();
        g.add(&info, &Bytes::from(info.to_json()));
        let top = g.top(None, 10);
        assert_eq!(top.len(), 2);
        assert_eq!(
            (
                top[0].signature.as_str(),
                top[0].count,
                top[0].first_ts,
                top[0].last_ts
            ),
            ("build <hex> failed", 3, 1, 5)
        );
        assert_eq!(top[0].sample["msg"], "build 7f3a9c21e0 failed");
        let (e, l) = err(10, "new thing");
        g.add(&e, &l); // evicts "disk full" (count 1)
        let sigs: Vec<_> = g.top(None, 10).into_iter().map(|g| g.signature).collect();
        assert_eq!(sigs, ["build <hex> failed", "new thing"]);
        assert!(g.top(Some(Tier::System), 10).is_empty());
    }
}
