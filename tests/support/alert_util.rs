//! Helpers shared by the alert tests: config from TOML through the real
//! loader, events, and an engine on a hand-driven clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logship::alert::{self, AlertHandle, AlertsConfig, ManualClock, Options};
use logship::event::{Event, Level, Tier};
use logship::ops::shutdown;

pub fn config(text: &str) -> AlertsConfig {
    logship::config::load_str(Path::new("t.toml"), text.to_string(), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
        .alerts
}

pub fn event(tier: Tier, lvl: Level, kind: &str, msg: &str) -> Event {
    let mut e = Event::empty(tier);
    e.lvl = lvl;
    e.kind = kind.into();
    e.msg = msg.into();
    e.instance_id = "host-1".into();
    e.src = "app".into();
    e
}

pub const T0: i64 = 1_736_812_345_678;

pub fn manual(cfg: &AlertsConfig, sd: &shutdown::Shutdown) -> (AlertHandle, ManualClock) {
    let clock = ManualClock::new(T0);
    let opts = Options {
        clock: Arc::new(clock.clone()),
        // Ticks only through sync(): time moves when the test says so.
        tick: Duration::from_secs(3600),
        ..Options::default()
    };
    (
        alert::start_with(cfg, "host-1", sd.clone(), opts).expect("start"),
        clock,
    )
}

pub fn hook_config(hook: &str, rules: &str) -> AlertsConfig {
    config(&format!(
        "[alerts.channels.webhook]\nurl = \"{hook}\"\nretry_initial = \"5ms\"\n{rules}"
    ))
}
