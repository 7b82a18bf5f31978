//! Slack incoming webhook: `{"text": ...}` with the headline and details.
//! The webhook URL is itself the credential; it is never logged.

use std::time::Duration;

use super::{clip, send_http, Deliver, DeliveryError, Notification};

pub struct Slack {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Slack {
    pub fn new(http: reqwest::Client, url: String, timeout: Duration) -> Slack {
        Slack { http, url, timeout }
    }
}

#[async_trait::async_trait]
impl Deliver for Slack {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let text = format!(
            ":rotating_light: *{}*\ninstance `{}` · fingerprint `{}`",
            clip(&n.headline(), 3000),
            n.instance_id,
            &n.fingerprint[..n.fingerprint.len().min(12)]
        );
        let req = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .json(&serde_json::json!({ "text": text }));
        send_http(req).await
    }
}
