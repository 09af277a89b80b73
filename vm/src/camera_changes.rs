//! `/guardian/config-change/1` at the vm: cameras changed on an edge's box (`guardian-edge
//! camera add|remove`) join the vm's configuration, in the same revision sequence as the
//! owner's changes through the API, so neither loses the other's.
//!
//! [`judge`] (pure) takes each change unless the camera belongs to another edge, or the vm
//! changed it after the revision the edge's change was made on (then the vm's stays, and the
//! edge gets it with the next push, which the pusher sends because the edge is behind). The
//! changes taken are stored in one new revision ([`db::change_cameras`]) and the pusher is
//! woken, so the edge's own change comes back to it as the revision it runs.

use std::sync::Arc;

use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::config::{CameraChanges, CameraChangesAck, CameraConfig, ChangeRefusal};

use crate::db::{self, CameraRow};
use crate::state::VmState;

/// Streams served at once (changes are rare and small).
const CONCURRENT: usize = 4;
/// How long one exchange may take.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What of a report of `peer` the vm takes: (upserts, removals, refusals).
pub fn judge(
    peer: &str,
    existing: &[CameraRow],
    changes: CameraChanges,
) -> (Vec<CameraConfig>, Vec<String>, Vec<ChangeRefusal>) {
    let base = changes.base_revision.unwrap_or(0);
    // Why the vm keeps its own version of camera `id`, if it does.
    let conflict = |id: &str| -> Option<String> {
        let row = existing.iter().find(|r| r.config.id == id)?;
        if row.peer_id != peer {
            Some(format!(
                "camera id {id} is used by another edge: pick another id"
            ))
        } else if row.changed_revision > base {
            Some(format!(
                "camera {id} was changed at the vm in revision {} after this edge's revision \
                 {base}: the vm's configuration stays",
                row.changed_revision
            ))
        } else {
            None
        }
    };
    let mut refused = Vec::new();
    let mut refuse = |camera: &str, reason: String| {
        refused.push(ChangeRefusal {
            camera: camera.to_owned(),
            reason,
        })
    };
    let mut upserts = Vec::new();
    for c in changes.upserts {
        match conflict(&c.id).map_or_else(|| c.validate(), Err) {
            Ok(()) => upserts.push(c),
            Err(reason) => refuse(&c.id, reason),
        }
    }
    let mut removals = Vec::new();
    for id in changes.removals {
        if !existing
            .iter()
            .any(|r| r.config.id == id && r.peer_id == peer)
        {
            continue;
        }
        match conflict(&id) {
            None => removals.push(id),
            Some(reason) => refuse(&id, reason),
        }
    }
    (upserts, removals, refused)
}

/// Serves reports from enrolled edges until `shutdown`.
pub async fn serve(
    state: Arc<VmState>,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams_within(
        incoming,
        CONCURRENT,
        shutdown,
        WITHIN,
        "camera change report",
        |peer, stream| {
            let state = state.clone();
            async move { handle(&state, peer, stream).await }
        },
    )
    .await
}

async fn handle(state: &VmState, peer: PeerId, mut stream: libp2p::Stream) -> anyhow::Result<()> {
    let changes: CameraChanges = read_frame(&mut stream).await?;
    let peer = peer.to_string();
    if !crate::handlers::registered(state, &peer).await? {
        anyhow::bail!("camera changes from a peer that is not an enrolled edge");
    }
    let (p, now) = (peer.clone(), state.clock.wall_ms());
    let ack = state
        .db
        .call(move |c| {
            let existing = db::cameras(c)?;
            let (upserts, removals, refused) = judge(&p, &existing, changes);
            let revision = db::change_cameras(c, &p, &upserts, &removals, now)?;
            Ok((
                CameraChangesAck { revision, refused },
                upserts.len(),
                removals.len(),
            ))
        })
        .await;
    let ack = match ack {
        Ok((ack, upserts, removals)) => {
            if let Some(revision) = ack.revision {
                tracing::info!(%peer, revision, upserts, removals, "cameras changed on the edge's box taken");
                state.config_changed.notify_one();
            }
            for r in &ack.refused {
                tracing::warn!(%peer, camera = %r.camera, reason = %r.reason, "camera change from the edge refused");
            }
            ack
        }
        Err(e) => return Err(e.into()),
    };
    write_frame(&mut stream, &ack).await?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cameras::tests::cfg;

    fn row(peer: &str, id: &str, rev: u64) -> CameraRow {
        CameraRow {
            peer_id: peer.into(),
            config: cfg(id),
            changed_revision: rev,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn the_boxs_changes_are_taken_unless_the_vm_changed_that_camera_since() {
        let existing = [
            row("a", "porch", 2),
            row("a", "yard", 5),
            row("b", "shop", 1),
        ];
        let mut bad = cfg("bad");
        bad.detect.fps = 0;
        let (upserts, removals, refused) = judge(
            "a",
            &existing,
            CameraChanges {
                base_revision: Some(3),
                upserts: vec![cfg("porch"), cfg("yard"), cfg("new"), cfg("shop"), bad],
                removals: vec![
                    "porch".into(),
                    "yard".into(),
                    "unknown".into(),
                    "shop".into(),
                ],
            },
        );
        let ids = |v: &[CameraConfig]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&upserts), ["porch", "new"]);
        assert_eq!(removals, ["porch"]);
        let why: Vec<(&str, &str)> = refused
            .iter()
            .map(|r| (r.camera.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[0].0 == "yard" && why[0].1.contains("revision 5"));
        assert!(why[1].0 == "shop" && why[1].1.contains("another edge"));
        assert!(why[2].0 == "bad" && why[2].1.contains("detect.fps"));
        assert!(why[3].0 == "yard");
        // An edge that never had a revision: every camera of the vm is newer.
        let (upserts, _, refused) = judge(
            "a",
            &existing,
            CameraChanges {
                base_revision: None,
                upserts: vec![cfg("porch"), cfg("fresh")],
                removals: vec![],
            },
        );
        assert_eq!(ids(&upserts), ["fresh"]);
        assert_eq!(refused.len(), 1);
    }
}
