//! PagerDuty Events API v2: a `trigger` with `dedup_key` = fingerprint, so
//! PagerDuty folds repeats of one problem into one incident.

use std::time::Duration;

use super::{clip, send_http, Deliver, DeliveryError, Notification};
use crate::alert::config::Severity;

pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";

pub struct PagerDuty {
    http: reqwest::Client,
    endpoint: String,
    routing_key: String,
    timeout: Duration,
}

impl PagerDuty {
    pub fn new(
        http: reqwest::Client,
        api_url: Option<String>,
        routing_key: String,
        timeout: Duration,
    ) -> PagerDuty {
        let base = api_url.unwrap_or_else(|| DEFAULT_API_URL.into());
        PagerDuty {
            http,
            endpoint: format!("{}/v2/enqueue", base.trim_end_matches('/')),
            routing_key,
            timeout,
        }
    }
}

/// PagerDuty's four severities.
fn pd_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

#[async_trait::async_trait]
impl Deliver for PagerDuty {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let body = serde_json::json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": n.fingerprint,
            "payload": {
                "summary": clip(&format!("{}: {}", n.rule, n.summary), 1024),
                "source": n.instance_id,
                "severity": pd_severity(n.severity),
                "class": n.rule,
                "group": n.event.as_ref().map(|e| e.tier.as_str()),
                "custom_details": {
                    "count": n.count,
                    "first_ts": n.first_ts,
                    "last_ts": n.last_ts,
                    "fingerprint": n.fingerprint,
                    "event": n.event,
                },
            },
        });
        let req = self
            .http
            .post(&self.endpoint)
            .timeout(self.timeout)
            .json(&body);
        send_http(req).await
    }
}
