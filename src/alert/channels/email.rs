//! Email over SMTP with lettre: STARTTLS (default, port 587), implicit TLS
//! (465) or none (25, for a local relay). One message to all recipients.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{clip, Deliver, DeliveryError, Notification};
use crate::alert::config::SmtpTls;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    pub fn new(
        host: &str,
        port: Option<u16>,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
        from: &str,
        to: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Email> {
        let (builder, default_port) = match tls {
            SmtpTls::Starttls => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
                587,
            ),
            SmtpTls::Tls => (AsyncSmtpTransport::<Tokio1Executor>::relay(host)?, 465),
            SmtpTls::None => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                25,
            ),
        };
        let mut builder = builder
            .port(port.unwrap_or(default_port))
            .timeout(Some(timeout));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let to = to
            .iter()
            .map(|t| t.parse::<Mailbox>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("email channel: bad recipient: {e}"))?;
        Ok(Email {
            transport: builder.build(),
            from: from
                .parse()
                .map_err(|e| anyhow::anyhow!("email channel: bad from address: {e}"))?,
            to,
        })
    }

    fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let mut b = Message::builder().from(self.from.clone()).subject(clip(
            &format!(
                "[logship] {} {}: {}",
                n.severity.as_str(),
                n.rule,
                n.summary
            ),
            200,
        ));
        for to in &self.to {
            b = b.to(to.clone());
        }
        let event = n
            .event
            .as_ref()
            .map(|e| e.to_json())
            .unwrap_or_else(|| "(none)".into());
        let body = format!(
            "{}\n\nrule: {}\nseverity: {}\ninstance: {}\ncount: {}\nfirst_ts: {}\nlast_ts: {}\nfingerprint: {}\n\nevent:\n{}\n",
            n.summary,
            n.rule,
            n.severity.as_str(),
            n.instance_id,
            n.count,
            n.first_ts,
            n.last_ts,
            n.fingerprint,
            event
        );
        b.header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| DeliveryError::Fail(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Deliver for Email {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let msg = self.message(n)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Fail(e.to_string())),
            Err(e) => Err(DeliveryError::Retry(e.to_string())),
        }
    }
}
