//! Event copies for the engine, reused.
//!
//! The write path copies an event for the engine only when a rule it hit
//! may notify with it ([`super::matching::RuleIndex::wants_event`]) — in an
//! error storm under a threshold rule, that is every error. A copy the
//! engine is done with (no episode keeps it) comes back here, and a later
//! copy is written into its buffers: no allocation per event, only the
//! bytes. Bounded: a few copies, and none with a large message, are kept.

use std::sync::{Arc, Mutex};

use crate::event::Event;

/// Copies kept at most.
const KEEP: usize = 32;
/// A copy whose message buffer is larger is not kept.
const KEEP_MSG_BYTES: usize = 16 * 1024;

/// Copies the engine gave back; shared by the write path and the engine.
#[derive(Debug, Default)]
pub struct Spares {
    pool: Mutex<Vec<Arc<Event>>>,
}

impl Spares {
    /// A copy of `e`, in a spare's buffers when there is one.
    pub fn copy(&self, e: &Event) -> Arc<Event> {
        // A poisoned lock only means a panic while it was held; the Vec is
        // whole either way.
        let spare = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(mut a) = spare {
            if let Some(dst) = Arc::get_mut(&mut a) {
                copy_into(dst, e);
                return a;
            }
        }
        Arc::new(e.clone())
    }

    /// Take back a copy; kept only when nothing else holds it.
    pub fn give_back(&self, mut a: Arc<Event>) {
        match Arc::get_mut(&mut a) {
            Some(e) if e.msg.capacity() <= KEEP_MSG_BYTES => {}
            _ => return,
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEEP {
            pool.push(a);
        }
    }
}

/// `*dst = src.clone()`, reusing `dst`'s buffers. Every field is named, so
/// a new field of [`Event`] does not compile until it is copied here.
fn copy_into(dst: &mut Event, src: &Event) {
    let Event {
        ts,
        instance_id,
        tier,
        kind,
        lvl,
        project_id,
        build_id,
        user_id,
        req_id,
        seq,
        src: source,
        msg,
        data,
    } = dst;
    *ts = src.ts;
    instance_id.clone_from(&src.instance_id);
    *tier = src.tier;
    kind.clone_from(&src.kind);
    *lvl = src.lvl;
    project_id.clone_from(&src.project_id);
    build_id.clone_from(&src.build_id);
    user_id.clone_from(&src.user_id);
    req_id.clone_from(&src.req_id);
    *seq = src.seq;
    source.clone_from(&src.src);
    msg.clone_from(&src.msg);
    data.clone_from(&src.data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Level, Tier};

    fn event(msg: &str) -> Event {
        let mut e = Event::empty(Tier::System);
        e.ts = 7;
        e.lvl = Level::Error;
        e.kind = "line".into();
        e.src = "/var/log/app.log".into();
        e.msg = msg.into();
        e.instance_id = "i-1".into();
        e.seq = 3;
        e
    }

    #[test]
    fn a_given_back_copy_is_reused_and_equal() {
        let s = Spares::default();
        let a = s.copy(&event("first, a longer message"));
        let at = Arc::as_ptr(&a);
        s.give_back(a);
        let mut other = event("second");
        other.tier = Tier::Build;
        other.lvl = Level::Warn;
        other.ts = 9;
        other.seq = 4;
        other.build_id = Some("b1".into());
        let mut d = serde_json::Map::new();
        d.insert("k".into(), 1.into());
        other.data = Some(d);
        let b = s.copy(&other);
        assert_eq!(Arc::as_ptr(&b), at, "the spare's allocation is reused");
        assert_eq!(*b, other);
        // And back the other way: fields the new event lacks are cleared.
        s.give_back(b);
        let c = s.copy(&event("third"));
        assert_eq!(*c, event("third"));
    }

    #[test]
    fn shared_or_large_copies_are_not_kept() {
        let s = Spares::default();
        let a = s.copy(&event("x"));
        let held = a.clone();
        s.give_back(a);
        assert!(s.pool.lock().unwrap().is_empty(), "still held elsewhere");
        drop(held);
        s.give_back(s.copy(&event(&"y".repeat(KEEP_MSG_BYTES + 1))));
        assert!(s.pool.lock().unwrap().is_empty(), "too large to keep");
        for _ in 0..KEEP + 5 {
            s.give_back(Arc::new(event("z")));
        }
        assert_eq!(s.pool.lock().unwrap().len(), KEEP);
    }
}
