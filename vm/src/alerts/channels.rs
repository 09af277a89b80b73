//! The notification channels as configured (`[[notify.webhooks]]`, `[[notify.ntfy]]`,
//! `[notify.smtp]`, and `[mqtt]`), checked once, and their names in the outbox
//! (`webhook:<name>`, `ntfy:<name>`, `smtp`, `mqtt`). Secrets are never in `Debug`.

use serde::{Deserialize, Serialize};

/// Notification channels (`[notify]` in `vm.toml`): every alert goes to each, through the
/// outbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Signed webhooks (`[[notify.webhooks]]`).
    pub webhooks: Vec<Webhook>,
    /// ntfy topics (`[[notify.ntfy]]`).
    pub ntfy: Vec<Ntfy>,
    /// E-mail (`[notify.smtp]`).
    pub smtp: Option<Smtp>,
}

/// A webhook: each alert POSTed as JSON, signed with `secret` (HMAC-SHA256).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhook {
    /// Its name (default `webhook-<n>`).
    pub name: String,
    /// `https://...` (or `http://` on a trusted network).
    pub url: String,
    /// The shared secret the receiver checks the signature with.
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("has_secret", &!self.secret.is_empty())
            .finish()
    }
}

/// An ntfy topic: each alert POSTed to `url/topic` with a title, priority, tags and a link.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ntfy {
    /// Its name (default `ntfy-<n>`).
    pub name: String,
    /// The server, such as `https://ntfy.sh`.
    pub url: String,
    /// The topic.
    pub topic: String,
    /// An access token, if the topic is protected.
    pub token: String,
}

impl std::fmt::Debug for Ntfy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ntfy")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("topic", &self.topic)
            .field("has_token", &!self.token.is_empty())
            .finish()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// STARTTLS on port 587 (required).
    #[default]
    Starttls,
    /// TLS from the start (port 465).
    Tls,
    /// None: only for a relay on the same host or a test sink.
    None,
}

/// E-mail over SMTP.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Smtp {
    /// The server.
    pub host: String,
    /// Its port (default 587).
    pub port: u16,
    /// STARTTLS, TLS or none.
    pub security: SmtpSecurity,
    /// The user, if the server wants authentication.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
            to: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

fn http_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://"))
        && u.len() <= 2048
        && !u.chars().any(|c| c.is_control() || c == ' ')
}

/// Checks the channels; the message names the channel and the field.
pub fn validate(n: &NotifyConfig) -> Result<(), String> {
    for (i, w) in n.webhooks.iter().enumerate() {
        let name = webhook_name(i, w);
        if !http_url(&w.url) {
            return Err(format!("webhook {name}: url must be http:// or https://"));
        }
        if w.secret.len() < 16 {
            return Err(format!(
                "webhook {name}: secret must be at least 16 characters"
            ));
        }
    }
    for (i, t) in n.ntfy.iter().enumerate() {
        let name = ntfy_name(i, t);
        if !http_url(&t.url) {
            return Err(format!("ntfy {name}: url must be http:// or https://"));
        }
        if t.topic.is_empty()
            || !t
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "ntfy {name}: topic must be letters, digits, - and _"
            ));
        }
    }
    if let Some(s) = &n.smtp {
        if s.host.is_empty() || s.from.is_empty() || s.to.is_empty() {
            return Err("smtp: host, from and to are required".into());
        }
        for a in std::iter::once(&s.from).chain(&s.to) {
            if a.parse::<lettre::Address>().is_err() {
                return Err(format!("smtp: {a:?} is not an e-mail address"));
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for c in outbox_channels(n, false) {
        if !names.insert(c.clone()) {
            return Err(format!("two channels are named {c}"));
        }
    }
    Ok(())
}

/// A webhook's name: its own, or `webhook-<n>` (from 1).
pub fn webhook_name(i: usize, w: &Webhook) -> String {
    if w.name.is_empty() {
        format!("webhook-{}", i + 1)
    } else {
        w.name.clone()
    }
}

/// An ntfy topic's name: its own, or `ntfy-<n>` (from 1).
pub fn ntfy_name(i: usize, t: &Ntfy) -> String {
    if t.name.is_empty() {
        format!("ntfy-{}", i + 1)
    } else {
        t.name.clone()
    }
}

/// The outbox names of every channel configured (`mqtt` when a broker is).
pub fn outbox_channels(n: &NotifyConfig, mqtt: bool) -> Vec<String> {
    let mut out: Vec<String> = n
        .webhooks
        .iter()
        .enumerate()
        .map(|(i, w)| format!("webhook:{}", webhook_name(i, w)))
        .collect();
    out.extend(
        n.ntfy
            .iter()
            .enumerate()
            .map(|(i, t)| format!("ntfy:{}", ntfy_name(i, t))),
    );
    if n.smtp.is_some() {
        out.push("smtp".into());
    }
    if mqtt {
        out.push("mqtt".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_checked_and_keep_their_secrets() {
        let mut n = NotifyConfig {
            webhooks: vec![Webhook {
                url: "https://example.org/hook".into(),
                secret: "a-secret-of-some-length".into(),
                ..Default::default()
            }],
            ntfy: vec![Ntfy {
                name: "phones".into(),
                url: "https://ntfy.sh".into(),
                topic: "home-alerts".into(),
                token: "tk_secret".into(),
            }],
            smtp: Some(Smtp {
                host: "mail.example.org".into(),
                from: "guardian@example.org".into(),
                to: vec!["owner@example.org".into()],
                password: "smtp-secret".into(),
                ..Default::default()
            }),
        };
        assert_eq!(validate(&n), Ok(()));
        assert_eq!(
            outbox_channels(&n, true),
            ["webhook:webhook-1", "ntfy:phones", "smtp", "mqtt"]
        );
        let debug = format!("{n:?}");
        for secret in ["a-secret-of-some-length", "tk_secret", "smtp-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        n.webhooks[0].secret = "short".into();
        assert!(validate(&n).unwrap_err().contains("secret"));
        n.webhooks[0].secret = "long-enough-secret".into();
        n.ntfy[0].topic = "a/b".into();
        assert!(validate(&n).unwrap_err().contains("topic"));
        n.ntfy[0].topic = "ok".into();
        n.smtp.as_mut().unwrap().to = vec!["not an address".into()];
        assert!(validate(&n).unwrap_err().contains("e-mail"));
    }
}
