//! The generic webhook: the notification as JSON (SPEC §8), optionally signed.
//!
//! With a `secret`, the request carries `X-Logship-Signature: sha256=<hex>`
//! (header name configurable), the HMAC-SHA256 of the exact body bytes, so a
//! receiver can verify the sender without TLS client certificates.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{send_http, Deliver, DeliveryError, Notification};

pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Logship-Signature";

pub struct Webhook {
    http: reqwest::Client,
    url: String,
    secret: Option<String>,
    header: String,
    timeout: Duration,
}

impl Webhook {
    pub fn new(
        http: reqwest::Client,
        url: String,
        secret: Option<String>,
        header: Option<String>,
        timeout: Duration,
    ) -> Webhook {
        Webhook {
            http,
            url,
            secret,
            header: header.unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.into()),
            timeout,
        }
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[async_trait::async_trait]
impl Deliver for Webhook {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(n).map_err(|e| DeliveryError::Fail(e.to_string()))?;
        let mut req = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            req = req.header(self.header.as_str(), signature(secret, &body));
        }
        send_http(req.body(body)).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
