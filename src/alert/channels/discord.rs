//! Discord webhook: `{"content": ..., "username": "logship"}`; Discord
//! rejects content over 2000 characters, so the text is clipped.

use std::time::Duration;

use super::{clip, send_http, Deliver, DeliveryError, Notification};

pub struct Discord {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Discord {
    pub fn new(http: reqwest::Client, url: String, timeout: Duration) -> Discord {
        Discord { http, url, timeout }
    }
}

#[async_trait::async_trait]
impl Deliver for Discord {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let text = format!("**{}**\ninstance `{}`", n.headline(), n.instance_id);
        let req = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .json(&serde_json::json!({ "content": clip(&text, 1900), "username": "logship" }));
        send_http(req).await
    }
}
