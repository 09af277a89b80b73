//! `/guardian/snapshot/1` on the edge: a camera's current picture for the owner (to draw
//! zones on), sealed before it leaves the camera's thread's memory.
//!
//! The vm asks (only the vm the package names is answered); the edge takes the camera's
//! latest decoded detection frame (at most [`FRESH_WITHIN`] old), encodes it as JPEG and
//! seals it with age to the owner and the key slots that include the camera, as a clip's
//! snapshot is sealed. The vm relays the age file; it cannot open it.

use std::sync::Arc;
use std::time::Duration;

use guardian_node::clock::SharedClock;
use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::discovery::{SnapshotAnswer, SnapshotRefusal, SnapshotRequest};

use crate::key_slots::KeySlots;
use crate::sealed::Recipients;
use crate::video::camera::{FrameBoard, StatusBoard};

/// A frame older than this is not a current picture.
pub const FRESH_WITHIN: Duration = Duration::from_secs(5);
/// How long one exchange may take.
const WITHIN: Duration = Duration::from_secs(15);

/// What answering needs.
pub struct Snapshots {
    /// The cameras' latest frames.
    pub frames: FrameBoard,
    /// The cameras' statuses (which cameras exist).
    pub status: StatusBoard,
    /// Who a camera's pictures are sealed to.
    pub slots: KeySlots,
    /// Wall time.
    pub clock: SharedClock,
}

impl Snapshots {
    /// The answer for `camera` (blocking: JPEG encoding and sealing).
    pub fn answer(&self, camera: &str) -> SnapshotAnswer {
        let frame = self.frames.lock().ok().and_then(|f| f.get(camera).cloned());
        let known = self
            .status
            .lock()
            .map(|s| s.contains_key(camera))
            .unwrap_or(false);
        let now = self.clock.wall_ms();
        let frame = match frame {
            Some(f) if now.saturating_sub(f.at_ms) <= FRESH_WITHIN.as_millis() as u64 => f,
            _ if !known => {
                return SnapshotAnswer::Refused(SnapshotRefusal::NoSuchCamera(camera.to_owned()));
            }
            _ => return SnapshotAnswer::Refused(SnapshotRefusal::NotStreaming(camera.to_owned())),
        };
        let sealed = (|| -> anyhow::Result<(Vec<u8>, Vec<String>)> {
            let jpeg = crate::video::finish::snapshot_jpeg(&frame.rgb, frame.width, frame.height)?;
            let to = Recipients::parse(&self.slots.recipients_for(camera))?;
            let mut out = Vec::with_capacity(jpeg.len() + 1024);
            protocols::seal::seal(jpeg.as_slice(), &mut out, &to.recipients)?;
            Ok((out, to.key_ids))
        })();
        match sealed {
            Ok((sealed, key_ids)) => SnapshotAnswer::Sealed {
                taken_at_ms: frame.at_ms,
                width: frame.width,
                height: frame.height,
                key_ids,
                sealed,
            },
            Err(e) => SnapshotAnswer::Refused(SnapshotRefusal::Failed(format!("{e:#}"))),
        }
    }
}

/// Serves snapshot requests from `vm` until `shutdown`.
pub async fn serve(
    snapshots: Arc<Snapshots>,
    vm: PeerId,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams_within(
        incoming,
        2,
        shutdown,
        WITHIN,
        "snapshot request",
        |peer, mut stream| {
            let snapshots = snapshots.clone();
            async move {
                anyhow::ensure!(peer == vm, "a snapshot asked by a peer that is not the vm");
                let req: SnapshotRequest = read_frame(&mut stream).await?;
                let camera = req.camera_id.clone();
                let answer = tokio::task::spawn_blocking(move || snapshots.answer(&camera)).await?;
                match &answer {
                    SnapshotAnswer::Sealed { sealed, .. } => {
                        tracing::info!(camera = %req.camera_id, bytes = sealed.len(), "fresh snapshot sealed for the owner")
                    }
                    SnapshotAnswer::Refused(r) => {
                        tracing::info!(camera = %req.camera_id, reason = %r, "no snapshot")
                    }
                }
                write_frame(&mut stream, &answer).await?;
                let _ = futures::AsyncWriteExt::close(&mut stream).await;
                anyhow::Ok(())
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::camera::LatestFrame;
    use guardian_node::clock::ManualClock;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[test]
    fn a_fresh_frame_is_sealed_to_the_camera_s_recipients_and_a_stale_one_refused() {
        let owner = age::x25519::Identity::generate();
        let clock = ManualClock::new(1_000_000);
        let snapshots = Snapshots {
            frames: Arc::new(Mutex::new(BTreeMap::new())),
            status: Arc::new(Mutex::new(BTreeMap::new())),
            slots: KeySlots::fixed(vec![owner.to_public().to_string()]),
            clock: clock.shared(),
        };
        assert_eq!(
            snapshots.answer("porch"),
            SnapshotAnswer::Refused(SnapshotRefusal::NoSuchCamera("porch".into()))
        );
        snapshots.frames.lock().unwrap().insert(
            "porch".into(),
            LatestFrame {
                rgb: Arc::new(vec![128u8; 64 * 48 * 3]),
                width: 64,
                height: 48,
                at_ms: 1_000_000,
            },
        );
        let SnapshotAnswer::Sealed {
            sealed,
            width,
            key_ids,
            ..
        } = snapshots.answer("porch")
        else {
            panic!("a sealed snapshot");
        };
        assert_eq!(width, 64);
        assert_eq!(key_ids.len(), 1);
        let mut jpeg = Vec::new();
        protocols::seal::open(sealed.as_slice(), &mut jpeg, &owner).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (64, 48));
        clock.advance(FRESH_WITHIN + Duration::from_millis(1));
        snapshots.status.lock().unwrap().insert(
            "porch".into(),
            protocols::messages::telemetry::CameraStatus {
                camera_id: "porch".into(),
                state: protocols::messages::telemetry::CameraState::Stalled,
                fps_milli: 0,
                last_error: None,
                width: 0,
                height: 0,
                bitrate_kbps: 0,
                last_frame_ms: 0,
                detect_ms: 0,
            },
        );
        assert_eq!(
            snapshots.answer("porch"),
            SnapshotAnswer::Refused(SnapshotRefusal::NotStreaming("porch".into()))
        );
    }
}
