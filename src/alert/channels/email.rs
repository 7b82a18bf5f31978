//! Email over SMTP with lettre: STARTTLS (default, port 587), implicit TLS
//! (465) or none (25, for a local relay). One message to all recipients.
//! STARTTLS is *required* (never a silent plaintext fallback); `ca_file`
//! adds a private CA to the system roots for internal relays.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{clip, Deliver, DeliveryError, Notification};
use crate::alert::config::SmtpTls;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    // One argument per config key; the caller is the one place that maps them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: &str,
        port: Option<u16>,
        tls: SmtpTls,
        ca_file: Option<&str>,
        credentials: Option<(String, String)>,
        from: &str,
        to: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Email> {
        let params = || -> anyhow::Result<TlsParameters> {
            let mut b = TlsParameters::builder(host.to_string());
            if let Some(path) = ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("email channel: cannot read ca_file {path:?}: {e}")
                })?;
                b = b.add_root_certificate(Certificate::from_pem(&pem)?);
            }
            Ok(b.build_rustls()?)
        };
        let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let (builder, default_port) = match tls {
            SmtpTls::Starttls => (plain.tls(Tls::Required(params()?)), 587),
            SmtpTls::Tls => (plain.tls(Tls::Wrapper(params()?)), 465),
            SmtpTls::None => (plain, 25),
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
