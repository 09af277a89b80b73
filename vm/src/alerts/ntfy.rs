//! ntfy: each alert POSTed to `<server>/<topic>` as a line of text, with a title, a priority
//! (3 for information and recoveries, 4 warning, 5 critical), tags and a click link (the
//! event in the web app), and the topic's token when it has one.

use std::time::Duration;

use super::channels::Ntfy;
use super::message::{self, Payload};

/// How long one POST may take.
pub const POST_WITHIN: Duration = Duration::from_secs(10);

/// POSTs one notification (blocking: run it on the blocking pool).
pub fn post(topic: &Ntfy, payload_json: &str) -> Result<(), String> {
    let p: Payload = serde_json::from_str(payload_json).map_err(|e| e.to_string())?;
    let (priority, tags) = message::ntfy_priority(&p);
    let url = format!("{}/{}", topic.url.trim_end_matches('/'), topic.topic);
    let mut req = ureq::post(&url)
        .timeout(POST_WITHIN)
        .set("User-Agent", "guardian-vm")
        .set("Title", &p.title)
        .set("Priority", priority)
        .set("Tags", &tags);
    if let Some(link) = &p.link {
        req = req.set("Click", link);
    }
    if !topic.token.is_empty() {
        req = req.set("Authorization", &format!("Bearer {}", topic.token));
    }
    match req.send_string(&p.message) {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(ureq::Error::Status(code, _)) => Err(format!("HTTP {code}")),
        Err(e) => Err(e.to_string()),
    }
}
