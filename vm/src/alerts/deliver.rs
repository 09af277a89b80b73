//! Delivering the notification outbox: due rows, oldest first, up to [`AT_ONCE`] at a time,
//! each to its channel's sender; delivered rows are marked sent, failed ones are tried again
//! after 1 s doubling to 5 min (with jitter), with the reason kept for `GET /api/v1/alerts`.
//! Woken when rows are queued; otherwise it looks at the next due row's time (or every
//! [`IDLE_LOOK`]). A vm restart or a receiver down delays notifications, never loses them;
//! a receiver may see one twice (a crash between its answer and the row's update), which it
//! deduplicates by the delivery id.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use guardian_node::Shutdown;
use rand::Rng;

use super::channels::{self, Ntfy, Webhook};
use crate::db::{self, NotificationRow};
use crate::state::VmState;

/// Notifications sent at once.
pub const AT_ONCE: usize = 8;
/// The longest wait with nothing due.
pub const IDLE_LOOK: Duration = Duration::from_secs(5);
/// The first retry's ceiling, doubling to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// When to try again after `attempts` failed attempts (full jitter, at least 200 ms).
pub fn retry_after(attempts: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = RETRY_FIRST
        .saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX))
        .min(RETRY_MAX);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(rng.gen_range(ms / 2..=ms).max(200))
}

/// Sends one row to its channel.
pub trait Sender: Send + Sync {
    /// Delivers `row`; the error says why not.
    fn send<'a>(
        &'a self,
        row: &'a NotificationRow,
        now_ms: u64,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

/// The configured channels' senders.
pub struct Senders {
    webhooks: Vec<(String, Webhook)>,
    ntfy: Vec<(String, Ntfy)>,
    /// Other channels (`smtp`, `mqtt`) by outbox name.
    others: Vec<(String, Arc<dyn Sender>)>,
}

impl Senders {
    /// The senders of `notify`, with `others` (the SMTP and MQTT senders, when configured).
    pub fn new(
        notify: &crate::config::NotifyConfig,
        others: Vec<(String, Arc<dyn Sender>)>,
    ) -> Self {
        Senders {
            webhooks: notify
                .webhooks
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    (
                        format!("webhook:{}", channels::webhook_name(i, w)),
                        w.clone(),
                    )
                })
                .collect(),
            ntfy: notify
                .ntfy
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("ntfy:{}", channels::ntfy_name(i, t)), t.clone()))
                .collect(),
            others,
        }
    }

    async fn send(&self, row: &NotificationRow, now_ms: u64) -> Result<(), String> {
        let (id, payload) = (row.id.clone(), row.payload_json.clone());
        if let Some((_, w)) = self.webhooks.iter().find(|(n, _)| *n == row.channel) {
            let w = w.clone();
            return tokio::task::spawn_blocking(move || {
                super::webhook::post(&w, &id, &payload, now_ms / 1000)
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        if let Some((_, t)) = self.ntfy.iter().find(|(n, _)| *n == row.channel) {
            let t = t.clone();
            return tokio::task::spawn_blocking(move || super::ntfy::post(&t, &payload))
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some((_, s)) = self.others.iter().find(|(n, _)| *n == row.channel) {
            return s.send(row, now_ms).await;
        }
        Err(format!(
            "channel {} is not configured any more",
            row.channel
        ))
    }
}

/// Delivers the outbox until `shutdown`.
pub async fn run(state: Arc<VmState>, senders: Arc<Senders>, shutdown: Shutdown) {
    loop {
        let now = state.clock.wall_ms();
        let due = match state
            .db
            .call(move |c| db::due_notifications(c, now, 64))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification outbox; will retry");
                Vec::new()
            }
        };
        if due.is_empty() {
            let next = state
                .db
                .call(|c| db::next_notification_at(c))
                .await
                .ok()
                .flatten()
                .map(|t| Duration::from_millis(t.saturating_sub(state.clock.wall_ms())))
                .unwrap_or(IDLE_LOOK)
                .clamp(Duration::from_millis(50), IDLE_LOOK);
            tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                _ = state.notifications_queued.notified() => {}
                _ = state.clock.sleep(next) => {}
            }
            continue;
        }
        let mut sending = futures::stream::iter(due)
            .map(|row| {
                let senders = senders.clone();
                let now = state.clock.wall_ms();
                async move {
                    let r = tokio::time::timeout(Duration::from_secs(30), senders.send(&row, now))
                        .await
                        .unwrap_or_else(|_| Err("no answer in 30 s".into()));
                    (row, r)
                }
            })
            .buffer_unordered(AT_ONCE);
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                n = sending.next() => n,
            };
            let Some((row, result)) = next else { break };
            let now = state.clock.wall_ms();
            let id = row.id.clone();
            let outcome = match result {
                Ok(()) => {
                    tracing::info!(delivery = %row.id, channel = %row.channel, kind = %row.kind, "notification delivered");
                    state
                        .db
                        .call(move |c| db::notification_sent(c, &id, now))
                        .await
                }
                Err(reason) => {
                    let wait = retry_after(row.attempts, &mut rand::thread_rng());
                    tracing::warn!(delivery = %row.id, channel = %row.channel, attempts = row.attempts + 1, %reason, wait_ms = wait.as_millis() as u64, "notification not delivered; will retry");
                    let at = now + wait.as_millis() as u64;
                    state
                        .db
                        .call(move |c| db::notification_failed(c, &id, &reason, at))
                        .await
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "cannot record a notification's delivery");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retries_double_to_five_minutes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut w = |a| retry_after(a, &mut rng);
        for _ in 0..20 {
            let (a, b, c) = (w(0), w(3), w(30));
            assert!(a <= Duration::from_secs(1) && a >= Duration::from_millis(500));
            assert!(b <= Duration::from_secs(8) && b >= Duration::from_secs(4));
            assert!(c <= RETRY_MAX && c >= RETRY_MAX / 2);
        }
    }
}
