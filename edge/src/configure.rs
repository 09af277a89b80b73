//! `/guardian/config/1` on the edge: applies the configuration sections the vm pushes, and
//! answers with what it did per section.
//!
//! Only the vm the package names may push (other peers' streams are dropped). Each section is
//! applied on its own: key slots through [`KeySlots::apply`], which checks the owner's
//! signature, tenant and version itself, so what the vm sends is never trusted as such;
//! cameras through [`camera_config::apply`] (written to `edge.toml`, which the supervisor
//! applies live; passwords open only for their camera and host); users (for the LAN web
//! app's sign-in) through [`crate::users::apply`], into the database. The
//! ack carries the revision applied, or the refusal's reason and the revision still running,
//! which the vm shows the owner (`guardian keys slots list`).

use guardian_node::{PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::config::{ConfigAck, ConfigPush, Section, SectionAck, SectionOutcome};

use crate::camera_config::{self, Outcome};
use crate::key_slots::KeySlots;

/// What applying sections needs.
#[derive(Clone)]
pub struct Context {
    /// The key slots the cameras seal with.
    pub slots: KeySlots,
    /// The data directory (`edge.toml`, the applied cameras).
    pub data: std::path::PathBuf,
    /// The edge's own age identity, which camera passwords are sealed to.
    pub identity: age::x25519::Identity,
}

/// How long the vm has to send its push once the stream is open.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What applying one section gives.
pub fn apply_section(ctx: &Context, section: &Section) -> SectionAck {
    let name = section.name();
    let outcome = match section {
        Section::KeySlots(list) => match ctx.slots.apply(list) {
            Ok(revision) => SectionOutcome::Applied { revision },
            Err(e) => SectionOutcome::Refused {
                revision: section.revision().unwrap_or(0),
                reason: e.to_string(),
                applied: ctx.slots.applied_version(),
            },
        },
        Section::Cameras(set) => match camera_config::apply(&ctx.data, set, &ctx.identity) {
            Ok(Outcome::Applied(revision)) => {
                tracing::info!(revision, cameras = set.cameras.len(), "cameras applied");
                SectionOutcome::Applied { revision }
            }
            Ok(Outcome::Stale { applied }) => SectionOutcome::Refused {
                revision: set.revision,
                reason: format!(
                    "revision {} is older than the applied revision {applied}",
                    set.revision
                ),
                applied: Some(applied),
            },
            Err(e) => SectionOutcome::Refused {
                revision: set.revision,
                reason: format!("{e:#}"),
                applied: camera_config::Applied::load(&ctx.data)
                    .ok()
                    .and_then(|a| a.revision),
            },
        },
        Section::Users(users) => match crate::users::apply(&ctx.data, users) {
            Ok(crate::store::UsersApplied::Applied(revision)) => {
                tracing::info!(revision, users = users.users.len(), "users applied");
                SectionOutcome::Applied { revision }
            }
            Ok(crate::store::UsersApplied::Stale { applied }) => SectionOutcome::Refused {
                revision: users.revision,
                reason: format!(
                    "revision {} is older than the applied revision {applied}",
                    users.revision
                ),
                applied: Some(applied),
            },
            Err(e) => SectionOutcome::Refused {
                revision: users.revision,
                reason: format!("{e:#}"),
                applied: crate::store::Store::open(&ctx.data.join(crate::paths::DB))
                    .ok()
                    .and_then(|s| s.users_revision().ok().flatten()),
            },
        },
    };
    SectionAck {
        section: name,
        outcome,
    }
}

/// Serves configuration streams from `vm` until `shutdown` or the end of the streams. One at
/// a time: pushes are rare and small, and each is applied in order.
pub async fn serve(
    ctx: Context,
    vm: PeerId,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams(incoming, 1, shutdown, |peer, stream| {
        let ctx = ctx.clone();
        async move {
            if peer != vm {
                tracing::warn!(%peer, "configuration pushed by a peer that is not the vm; ignored");
                return;
            }
            handle(ctx, stream).await
        }
    })
    .await
}

async fn handle(ctx: Context, mut stream: guardian_node::Stream) {
    let push =
        match tokio::time::timeout(READ_WITHIN, read_frame::<ConfigPush, _>(&mut stream)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return tracing::warn!(error = %e, "unreadable configuration push"),
            Err(_) => return tracing::warn!("the vm's configuration push did not arrive in time"),
        };
    let Ok(ack) = tokio::task::spawn_blocking(move || ConfigAck {
        sections: push
            .sections
            .iter()
            .map(|sec| apply_section(&ctx, sec))
            .collect(),
    })
    .await
    else {
        return;
    };
    if let Err(e) = write_frame(&mut stream, &ack).await {
        tracing::warn!(error = %e, "cannot answer the vm's configuration push");
    }
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::key_slots::KeySlotList;
    use protocols::messages::config::SectionName;
    use protocols::signed::Signed;

    fn phc(password: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
    }

    /// The users section as the vm pushes it, applied by the same function the stream
    /// handler calls: stored, then older revisions and bad hashes refused.
    #[test]
    fn the_users_section_is_applied_into_the_store() {
        use protocols::messages::config::{LocalUser, Role, UsersSection};
        let dir = tempfile::tempdir().unwrap();
        crate::store::Store::open(&dir.path().join(crate::paths::DB)).unwrap();
        let ctx = Context {
            slots: KeySlots::fixed(vec![]),
            data: dir.path().to_path_buf(),
            identity: age::x25519::Identity::generate(),
        };
        let users = |revision, password_phc: String| UsersSection {
            revision,
            users: vec![LocalUser {
                name: "sitter".into(),
                password_phc,
                role: Role::Viewer,
                cameras: Some(vec!["porch".into()]),
            }],
        };
        let ack = apply_section(&ctx, &Section::Users(users(5, phc("a long password"))));
        assert_eq!(ack.section, SectionName::Users);
        assert_eq!(ack.outcome, SectionOutcome::Applied { revision: 5 });
        let store = crate::store::Store::open(&dir.path().join(crate::paths::DB)).unwrap();
        let sitter = store.user("sitter").unwrap().unwrap();
        assert_eq!(sitter.cameras, Some(vec!["porch".to_owned()]));
        match apply_section(&ctx, &Section::Users(users(4, phc("x")))).outcome {
            SectionOutcome::Refused {
                revision, applied, ..
            } => assert_eq!((revision, applied), (4, Some(5))),
            other => panic!("{other:?}"),
        }
        match apply_section(&ctx, &Section::Users(users(6, "$argon2id$nonsense".into()))).outcome {
            SectionOutcome::Refused {
                reason, applied, ..
            } => {
                assert!(reason.contains("password_phc"), "{reason}");
                assert_eq!(applied, Some(5));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_section_says_why_and_what_still_runs() {
        let slots = KeySlots::fixed(vec![
            "age1png63l7y86t6utsqc0s5lh2mt97q99k84cfg3mgs9f20cn067s3svhpf46".into(),
        ]);
        let list = Signed::sign(
            &KeySlotList {
                tenant_id: "t".into(),
                version: 4,
                slots: vec![],
                signed_at_ms: 1,
            },
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        );
        let ctx = Context {
            slots,
            data: std::env::temp_dir(),
            identity: age::x25519::Identity::generate(),
        };
        let ack = apply_section(&ctx, &Section::KeySlots(list));
        assert_eq!(ack.section, SectionName::KeySlots);
        match ack.outcome {
            SectionOutcome::Refused {
                revision,
                reason,
                applied,
            } => {
                assert_eq!((revision, applied), (4, None));
                assert!(reason.contains("names no owner signing key"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
