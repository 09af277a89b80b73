//! Cameras changed on the box (`guardian-edge camera add|remove`, or `edge.toml` edited)
//! reported to the vm over `/guardian/config-change/1`, so the vm, which owns the cameras'
//! configuration, holds them in its revision sequence and the owner sees them.
//!
//! Each [`EVERY`] while connected, the agent compares `edge.toml` with the revision it
//! applied ([`camera_config::pending`]); what differs is sent, passwords sealed to the edge
//! itself. The vm answers with the revision that holds the changes and pushes it, after
//! which nothing differs. The same changes are not sent again within [`AGAIN_AFTER`] (a
//! refused change waits for the vm's push, which makes its own version win).

use std::time::{Duration, Instant};

use anyhow::Result;
use guardian_node::{NodeHandle, PeerId};
use protocols::messages::config::CameraChangesAck;

use crate::camera_config;

/// How often `edge.toml` is compared with the applied revision.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long before the same changes are sent again.
pub const AGAIN_AFTER: Duration = Duration::from_secs(30);
/// How long one exchange may take.
const WITHIN: Duration = Duration::from_secs(10);

/// Whether changes named `key` are due at `now`, after `last` (the key and time of the last
/// send).
pub fn due(key: &str, last: Option<&(String, Instant)>, now: Instant) -> bool {
    last.is_none_or(|(k, at)| k != key || now.saturating_duration_since(*at) >= AGAIN_AFTER)
}

/// The reporter's state.
#[derive(Debug)]
pub struct Reporter {
    next: Instant,
    last: Option<(String, Instant)>,
}

impl Reporter {
    /// A reporter whose first look is due at `now`.
    pub fn new(now: Instant) -> Reporter {
        Reporter {
            next: now,
            last: None,
        }
    }

    /// Looks for changes when due and sends them.
    pub async fn tick(
        &mut self,
        handle: &NodeHandle,
        vm: PeerId,
        installed: &crate::data_dir::Installed,
        now: Instant,
    ) -> Result<()> {
        if now < self.next {
            return Ok(());
        }
        self.next = now + EVERY;
        let data = installed.data.clone();
        let recipient = installed.age.to_public().to_string();
        let Some((key, changes)) =
            tokio::task::spawn_blocking(move || camera_config::pending(&data, &recipient))
                .await??
        else {
            self.last = None;
            return Ok(());
        };
        if !due(&key, self.last.as_ref(), now) {
            return Ok(());
        }
        self.last = Some((key, now));
        let (upserts, removals) = (changes.upserts.len(), changes.removals.len());
        let mut control = handle.streams();
        let (mut stream, ack) = tokio::time::timeout(
            WITHIN,
            guardian_node::open_with_request::<_, CameraChangesAck>(
                &mut control,
                vm,
                protocols::messages::CONFIG_CHANGE,
                &changes,
            ),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the vm did not answer in {WITHIN:?}"))??;
        let _ = futures::AsyncWriteExt::close(&mut stream).await;
        if let Some(revision) = ack.revision {
            tracing::info!(
                revision,
                upserts,
                removals,
                "cameras changed on this box reported to the vm"
            );
        }
        for r in ack.refused {
            tracing::warn!(camera = %r.camera, reason = %r.reason, "the vm refused a camera change made on this box");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_changes_wait_and_new_ones_go_at_once() {
        let t0 = Instant::now();
        assert!(due("a", None, t0));
        let last = ("a".to_string(), t0);
        assert!(!due("a", Some(&last), t0 + Duration::from_secs(5)));
        assert!(due("b", Some(&last), t0 + Duration::from_secs(5)));
        assert!(due("a", Some(&last), t0 + AGAIN_AFTER));
    }
}
