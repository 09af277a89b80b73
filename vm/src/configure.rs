//! `/guardian/config/1` from the vm: offers each edge the latest configuration sections and
//! records what it did with them.
//!
//! The vm owns the configuration but not the key slots' content: it forwards the list the
//! owner signed, byte for byte, and the edge checks the signature. The cameras section is
//! the vm's own (`db::camera_set`, one revision sequence per edge; passwords only sealed to
//! the edge). The users section carries the household's users (Argon2id hashes, roles, cameras)
//! for the edge's LAN web app, at the vm's user revision. A push goes to an edge
//! when it connects, to every connected edge when a section changes
//! ([`VmState::config_changed`]), and on each [`RETRY`] tick to connected edges that neither
//! run the latest revision nor refused it ([`needs_push`]). Each push is bounded by
//! [`PUSH_WITHIN`]; the edge's ack per section is written to `config_acks`, which
//! `GET /api/v1/key-slots` and `GET /api/v1/cameras` show the owner.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use guardian_node::{NodeEvent, PeerId, Shutdown};
use protocols::key_slots::KeySlotList;
use protocols::messages::config::{
    ConfigAck, ConfigPush, LocalUser, Role, Section, SectionName, SectionOutcome, UsersSection,
};
use protocols::signed::Signed;
use tokio::sync::broadcast;

use crate::db::{self, AckRow};
use crate::state::VmState;

/// How often connected edges behind the latest revision are offered it again.
pub const RETRY: Duration = Duration::from_secs(5);
/// How long one push may take, open to ack.
pub const PUSH_WITHIN: Duration = Duration::from_secs(10);

/// Whether an edge whose state is `ack` should be offered revision `latest`: not when it
/// runs it, and not when it already refused that very revision (a refusal is final for a
/// revision) unless it just `reconnected` (it may have been reinstalled).
pub fn needs_push(latest: Option<u64>, ack: Option<&AckRow>, reconnected: bool) -> bool {
    let Some(latest) = latest else { return false };
    let Some(a) = ack else { return true };
    if a.applied_revision == Some(latest) {
        return false;
    }
    let refused_this = a.offered_revision == Some(latest) && a.refused_reason.is_some();
    !refused_this || reconnected
}

/// The users section at the vm's user revision (`None` before the first user was saved):
/// names, roles, cameras and Argon2id hashes, so the edge's LAN app signs them in when the
/// internet is down.
fn users_section(c: &rusqlite::Connection) -> Result<Option<UsersSection>, db::DbError> {
    let revision = db::users_revision(c)?;
    if revision == 0 {
        return Ok(None);
    }
    let users = db::users(c)?
        .into_iter()
        .map(|u| LocalUser {
            role: Role::parse(&u.user.role).unwrap_or(Role::Viewer),
            name: u.user.name,
            password_phc: u.password_phc,
            cameras: u.user.cameras,
        })
        .collect();
    Ok(Some(UsersSection { revision, users }))
}

/// Runs the pusher until `shutdown`.
pub async fn run(
    state: Arc<VmState>,
    mut events: broadcast::Receiver<NodeEvent>,
    shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            _ = state.config_changed.notified() => push_connected(&state, false).await,
            e = events.recv() => match e {
                Ok(NodeEvent::Connected { peer, .. }) => push_peer(&state, &peer.to_string(), true).await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => push_connected(&state, false).await,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = state.clock.sleep(RETRY) => push_connected(&state, false).await,
        }
    }
}

async fn push_connected(state: &VmState, reconnected: bool) {
    let devices = match state.db.call(|c| db::devices(c)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list edges to push configuration to");
            return;
        }
    };
    for d in devices {
        if state.is_connected(&d.peer_id) {
            push_peer(state, &d.peer_id, reconnected).await;
        }
    }
}

/// Offers `peer` the latest revision of each section [`needs_push`] says it lacks: the key
/// slots (shared by every edge) and the edge's own cameras.
async fn push_peer(state: &VmState, peer: &str, reconnected: bool) {
    let p = peer.to_owned();
    let looked = state
        .db
        .call(move |c| {
            if db::device(c, &p)?.is_none() {
                return Ok(None);
            }
            let ack = |section: SectionName| -> Result<Option<AckRow>, db::DbError> {
                Ok(db::config_acks(c, section.as_str())?
                    .into_iter()
                    .find(|a| a.peer_id == p))
            };
            Ok(Some((
                db::latest_key_slots(c)?,
                ack(SectionName::KeySlots)?,
                db::camera_set(c, &p)?,
                ack(SectionName::Cameras)?,
                users_section(c)?,
                ack(SectionName::Users)?,
            )))
        })
        .await;
    let (slots, slots_ack, cameras, cameras_ack, users, users_ack) = match looked {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the configuration to push");
            return;
        }
    };
    let mut sections = Vec::new();
    if let Some(list) =
        slots.filter(|l| needs_push(Some(l.version), slots_ack.as_ref(), reconnected))
    {
        sections.push(Section::KeySlots(Signed::<KeySlotList>::from_parts(
            list.body,
            list.signature,
        )));
    }
    if let Some(set) =
        cameras.filter(|s| needs_push(Some(s.revision), cameras_ack.as_ref(), reconnected))
    {
        sections.push(Section::Cameras(set));
    }
    // The users travel in a push of their own: an edge older than the section cannot decode
    // it, and must still get its key slots and cameras.
    let users = users
        .filter(|u| needs_push(Some(u.revision), users_ack.as_ref(), reconnected))
        .map(|u| vec![Section::Users(u)]);
    for sections in [Some(sections), users].into_iter().flatten() {
        if sections.is_empty() {
            continue;
        }
        let push = ConfigPush { sections };
        match send(state, peer, &push).await {
            Ok(ack) => record(state, peer, ack).await,
            Err(e) => tracing::debug!(%peer, error = %e, "configuration push failed; will retry"),
        }
    }
}

async fn send(state: &VmState, peer: &str, push: &ConfigPush) -> anyhow::Result<ConfigAck> {
    let node = state
        .node
        .get()
        .ok_or_else(|| anyhow::anyhow!("the node is not started"))?;
    let peer_id = PeerId::from_str(peer)?;
    let (p, now) = (peer.to_owned(), state.clock.wall_ms());
    let offers: Vec<(SectionName, u64)> = push
        .sections
        .iter()
        .map(|s| (s.name(), s.revision().unwrap_or(0)))
        .collect();
    state
        .db
        .call(move |c| {
            for (name, revision) in offers {
                db::record_offer(c, &p, name.as_str(), revision, now)?;
            }
            Ok(())
        })
        .await?;
    let mut control = node.streams();
    let (mut stream, ack) = tokio::time::timeout(
        PUSH_WITHIN,
        guardian_node::open_with_request::<_, ConfigAck>(
            &mut control,
            peer_id,
            protocols::messages::CONFIG,
            push,
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer in {PUSH_WITHIN:?}"))??;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(ack)
}

async fn record(state: &VmState, peer: &str, ack: ConfigAck) {
    let now = state.clock.wall_ms();
    for s in ack.sections {
        let (applied, reason) = match &s.outcome {
            SectionOutcome::Applied { revision } => {
                tracing::info!(%peer, section = s.section.as_str(), revision, "edge applied configuration");
                (Some(*revision), None)
            }
            SectionOutcome::Refused {
                revision,
                reason,
                applied,
            } => {
                tracing::warn!(%peer, section = s.section.as_str(), revision, %reason, "edge refused configuration");
                (*applied, Some(reason.clone()))
            }
        };
        let p = peer.to_owned();
        if let Err(e) = state
            .db
            .call(move |c| {
                db::record_ack(c, &p, s.section.as_str(), applied, reason.as_deref(), now)
            })
            .await
        {
            tracing::warn!(error = %e, "cannot record an edge's configuration ack");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(applied: Option<u64>, offered: Option<u64>, refused: bool) -> AckRow {
        AckRow {
            peer_id: "p".into(),
            applied_revision: applied,
            offered_revision: offered,
            refused_reason: refused.then(|| "bad signature".into()),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn pushes_until_applied_and_not_again_after_a_refusal() {
        assert!(!needs_push(None, None, true), "nothing to push");
        assert!(needs_push(Some(1), None, false), "never offered");
        assert!(!needs_push(
            Some(2),
            Some(&ack(Some(2), Some(2), false)),
            true
        ));
        assert!(needs_push(
            Some(3),
            Some(&ack(Some(2), Some(2), false)),
            false
        ));
        // Offered, no answer yet (a lost push): again.
        assert!(needs_push(
            Some(3),
            Some(&ack(Some(2), Some(3), false)),
            false
        ));
        // Refused that revision: not on every tick, but after a reconnect.
        assert!(!needs_push(
            Some(3),
            Some(&ack(Some(2), Some(3), true)),
            false
        ));
        assert!(needs_push(
            Some(3),
            Some(&ack(Some(2), Some(3), true)),
            true
        ));
        // A refusal of an older revision does not hold back a newer one.
        assert!(needs_push(
            Some(4),
            Some(&ack(Some(2), Some(3), true)),
            false
        ));
    }
}
