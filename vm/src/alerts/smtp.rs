//! E-mail (lettre over SMTP: STARTTLS, TLS, or none for a local relay): each alert a short
//! plain-text message, its subject the alert's title, its body the sentence, the link and
//! the delivery id.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channels::{Smtp, SmtpSecurity};
use super::deliver::Sender;
use super::message::Payload;
use crate::db::NotificationRow;

/// How long one message may take to send.
pub const SEND_WITHIN: Duration = Duration::from_secs(20);

/// The SMTP sender.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl SmtpSender {
    /// A sender for `cfg` (checked by [`super::channels::validate`]).
    pub fn new(cfg: &Smtp) -> anyhow::Result<SmtpSender> {
        let builder = match cfg.security {
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)?,
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            }
        };
        let mut builder = builder.port(cfg.port).timeout(Some(SEND_WITHIN));
        if !cfg.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(cfg.username.clone(), cfg.password.clone()));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from: cfg.from.parse()?,
            to: cfg.to.iter().map(|t| t.parse()).collect::<Result<_, _>>()?,
        })
    }

    /// The message of one notification.
    pub fn message(&self, row: &NotificationRow) -> Result<Message, String> {
        let p: Payload = serde_json::from_str(&row.payload_json).map_err(|e| e.to_string())?;
        let mut text = format!("{}\n", p.message);
        if let Some(link) = &p.link {
            text += &format!("\n{link}\n");
        }
        text += &format!("\n-- \nPrivate AI Guardian, delivery {}\n", row.id);
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(format!("[Guardian] {}", p.title))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            m = m.to(t.clone());
        }
        m.body(text).map_err(|e| e.to_string())
    }
}

impl Sender for SmtpSender {
    fn send<'a>(
        &'a self,
        row: &'a NotificationRow,
        _now_ms: u64,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let m = self.message(row)?;
            self.transport
                .send(m)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
