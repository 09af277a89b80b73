//! The gate's allow-list, kept from the database: registered devices (their own keys), and
//! the enrollment identities of install packages, derived from their tokens' secrets: while
//! unspent (until [`crate::db::EXPIRED_GRACE_MS`] past the expiry, so an edge with an expired
//! token is told so by the enrollment protocol), and for [`crate::db::EXPIRED_GRACE_MS`] after
//! being spent (so an edge whose answer was lost asks again and is answered, and a copy of a
//! spent package is told it was used). Refreshed every
//! [`REFRESH`] on the vm's clock, so packages made by `guardian-vm package` while the vm runs
//! are admitted.

use std::str::FromStr;
use std::time::Duration;

use guardian_node::{PeerId, Shutdown};

use crate::db;
use crate::state::VmState;

/// How often the allow-list is read again from the database.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Admits every peer the database allows now (on the vm's clock).
pub async fn refresh(state: &VmState) -> Result<(), db::DbError> {
    let now = state.clock.wall_ms();
    let peers = state.db.call(move |c| db::allowed_peers(c, now)).await?;
    for p in peers {
        match PeerId::from_str(&p) {
            Ok(peer) => state.allow().allow(peer),
            Err(_) => tracing::error!(peer = %p, "a stored peer id does not parse"),
        }
    }
    Ok(())
}

/// Refreshes every [`REFRESH`] on the vm's clock until `shutdown`.
pub async fn refresh_periodically(state: std::sync::Arc<VmState>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = state.clock.sleep(REFRESH) => {
                if let Err(e) = refresh(&state).await {
                    tracing::error!(error = %e, "cannot refresh the allow-list");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{EXPIRED_GRACE_MS, PackageRow};
    use guardian_node::{AllowList, ManualClock};

    const T0: u64 = 1_800_000_000_000;

    #[tokio::test]
    async fn an_unspent_package_is_admitted_until_seven_days_past_its_expiry() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = crate::state::for_tests(clock.shared()).await;
        let key = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
        let peer: PeerId = protocols::signed::peer_id_of(&key.verifying_key())
            .parse()
            .unwrap();
        let expires = T0 + 1_000;
        let row = PackageRow {
            token_id: "tok".into(),
            enroll_peer_id: peer.to_string(),
            edge_name: "home".into(),
            recipient: "age1x".into(),
            issued_at_ms: T0,
            expires_at_ms: expires,
            used_at_ms: None,
        };
        state
            .db
            .call(move |c| db::insert_package(c, &row))
            .await
            .unwrap();
        assert_eq!(EXPIRED_GRACE_MS, 7 * 24 * 3600 * 1000);

        // The refresher runs on the clock: the first refresh comes one period on.
        let stop = Shutdown::new();
        let task = tokio::spawn(refresh_periodically(state.clone(), stop.clone()));
        tokio::time::timeout(Duration::from_secs(10), async {
            while clock.sleepers() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the refresher sleeps on the clock");
        assert!(!state.allow().is_allowed(&peer));
        clock.advance(REFRESH);
        tokio::time::timeout(Duration::from_secs(10), async {
            while !state.allow().is_allowed(&peer) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("admitted by the periodic refresh");
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the refresher ends on shutdown")
            .unwrap();

        // The allow-list only grows; a fresh one shows what the database allows at each time.
        let admitted_at = |at: u64| {
            let state = state.clone();
            let clock = clock.clone();
            async move {
                clock.set_wall_ms(at);
                let fresh = AllowList::closed();
                let now = state.clock.wall_ms();
                for p in state
                    .db
                    .call(move |c| db::allowed_peers(c, now))
                    .await
                    .unwrap()
                {
                    fresh.allow(p.parse().unwrap());
                }
                fresh.is_allowed(&peer)
            }
        };
        assert!(
            admitted_at(expires + EXPIRED_GRACE_MS - 1).await,
            "in the grace week"
        );
        assert!(!admitted_at(expires + EXPIRED_GRACE_MS).await, "past it");
    }

    #[test]
    fn a_spent_packages_enrollment_identity_is_admitted_for_a_week_after_spending() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let allowed = |at: u64| db.with(|c| db::allowed_peers(c, at)).unwrap();
        db.with(|c| {
            db::insert_package(
                c,
                &PackageRow {
                    token_id: "tok".into(),
                    enroll_peer_id: "enroll-peer".into(),
                    edge_name: "home".into(),
                    recipient: "age1x".into(),
                    issued_at_ms: T0,
                    expires_at_ms: T0 + 1_000,
                    used_at_ms: None,
                },
            )?;
            db::enroll_device(
                c,
                &crate::db::DeviceRow {
                    peer_id: "own-key".into(),
                    name: "home".into(),
                    token_id: "tok".into(),
                    recipient: "age1x".into(),
                    age_recipient: Some("age1edge".into()),
                    enrolled_at_ms: T0 + 500,
                    agent_version: "v".into(),
                    last_seen_ms: T0 + 500,
                },
            )
        })
        .unwrap();
        let mut both = allowed(T0 + 600);
        both.sort();
        assert_eq!(both, ["enroll-peer", "own-key"]);
        // Past the token's expiry, within a week of spending: still both.
        assert_eq!(allowed(T0 + 500 + EXPIRED_GRACE_MS - 1).len(), 2);
        // A week after spending: the device's own key only.
        assert_eq!(allowed(T0 + 500 + EXPIRED_GRACE_MS), ["own-key"]);
    }
}
