//! SMS through the Twilio Messages API: one form POST per recipient to
//! `{api_url}/2010-04-01/Accounts/{sid}/Messages.json`, basic auth
//! `sid:auth_token`. A retry re-sends to every recipient (a recipient may get
//! a duplicate text when another one failed; missing a page is worse).

use std::time::Duration;

use super::{clip, send_http, Deliver, DeliveryError, Notification};

pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

pub struct Sms {
    http: reqwest::Client,
    endpoint: String,
    sid: String,
    token: String,
    from: String,
    to: Vec<String>,
    timeout: Duration,
}

impl Sms {
    pub fn new(
        http: reqwest::Client,
        api_url: Option<String>,
        sid: String,
        token: String,
        from: String,
        to: Vec<String>,
        timeout: Duration,
    ) -> Sms {
        let base = api_url.unwrap_or_else(|| DEFAULT_API_URL.into());
        Sms {
            http,
            endpoint: format!(
                "{}/2010-04-01/Accounts/{sid}/Messages.json",
                base.trim_end_matches('/')
            ),
            sid,
            token,
            from,
            to,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl Deliver for Sms {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        // Twilio caps a message at 1600 characters; a page should be short.
        let body = clip(&n.headline(), 320);
        for to in &self.to {
            let req = self
                .http
                .post(&self.endpoint)
                .timeout(self.timeout)
                .basic_auth(&self.sid, Some(&self.token))
                .form(&[("To", to.as_str()), ("From", &self.from), ("Body", &body)]);
            send_http(req).await?;
        }
        Ok(())
    }
}
