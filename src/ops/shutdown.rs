//! "Has the stop signal arrived?" — shared by the async tasks and the
//! blocking pipeline thread.
//!
//! One `watch` channel carries the signal: async tasks await `wait()`, the
//! pipeline thread polls `is_set()` between batches (it already wakes at
//! least every poll interval, so no extra wake-up channel is needed).

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending half; dropping it also counts as a shutdown.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    pub fn fire(&self) {
        // Errors only when every receiver is gone, i.e. nobody is left to stop.
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown was fired (or the trigger dropped).
    pub async fn wait(&mut self) {
        // A closed channel means the trigger was dropped: treat as fired.
        let _ = self.rx.wait_for(|v| *v).await;
    }
}
