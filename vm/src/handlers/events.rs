//! `/guardian/events/1` on the vm: event batches from enrolled edges into the events cache.
//! Refusals are typed: not enrolled, wrong tenant or edge and malformed are final (the edge
//! parks the batch); a database that cannot be read or written answers
//! `StorageUnavailable`, which the edge retries with backoff.

use guardian_node::PeerId;
use protocols::messages::events::{EventAck, EventBatch, EventRefusal};

use crate::batch::check_batch;
use crate::db;
use crate::state::VmState;

/// Answers an event batch: stored (idempotently by event id), or a typed refusal; only a
/// database failure is retryable ([`EventRefusal::StorageUnavailable`]).
pub async fn events(state: &VmState, peer: PeerId, batch: EventBatch) -> EventAck {
    let peer = peer.to_string();
    match super::registered(state, &peer).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(%peer, "events from an edge that is not enrolled refused");
            return EventAck::Refused(EventRefusal::NotEnrolled);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check the device");
            return EventAck::Refused(EventRefusal::StorageUnavailable(
                "the vm could not read its database".into(),
            ));
        }
    }
    if let Err(reason) = check_batch(&state.config.tenant_id, &peer, &batch) {
        tracing::warn!(%peer, %reason, "event batch refused");
        return EventAck::Refused(reason);
    }
    let n = batch.events.len();
    state.metrics.events_received.inc_by(n as u64);
    let ids: Vec<String> = batch.events.iter().map(|e| e.event_id.clone()).collect();
    let peer2 = peer.clone();
    let now = state.clock.wall_ms();
    let setup = state.alerts.clone();
    // The events and the alerts they raise are stored in one transaction: an event held is
    // an alert queued.
    match state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let stored = db::insert_events_in(&tx, &peer2, &batch.events, now)?;
            let queued = crate::alerts::engine::plan_events(&tx, &setup, &stored, now)?;
            tx.commit()?;
            Ok((stored, queued))
        })
        .await
    {
        Ok((stored, queued)) => {
            let new = stored.iter().filter(|s| s.previous.is_none()).count();
            state.metrics.events_stored.inc_by(new as u64);
            tracing::info!(%peer, received = n, new, changed = stored.len(), "events stored");
            if queued > 0 {
                state.notifications_queued.notify_one();
            }
            EventAck::Stored { event_ids: ids }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store events");
            EventAck::Refused(EventRefusal::StorageUnavailable(
                "the vm could not store the events".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::ManualClock;
    use protocols::messages::Category;
    use protocols::messages::events::EventRecord;

    const T0: u64 = 1_800_000_000_000;

    fn edge() -> PeerId {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        protocols::signed::peer_id_of(&key.verifying_key())
            .parse()
            .unwrap()
    }

    fn batch(peer: &PeerId, ids: &[&str]) -> EventBatch {
        EventBatch {
            events: ids
                .iter()
                .map(|id| EventRecord {
                    event_id: (*id).into(),
                    tenant_id: "t".into(),
                    edge_id: peer.to_string(),
                    camera_id: "front".into(),
                    started_at_ms: T0,
                    ended_at_ms: T0 + 1,
                    category: Category::Person,
                    score_milli: 900,
                    clip_cid: None,
                    snapshot_cid: None,
                    thumbnail_cid: None,
                    truncated: false,
                    ..Default::default()
                })
                .collect(),
        }
    }

    async fn count(state: &VmState) -> u64 {
        state.db.call(|c| db::event_count(c)).await.unwrap()
    }

    #[tokio::test]
    async fn an_edge_not_enrolled_is_refused_for_good() {
        let (_dir, state) = crate::state::for_tests(ManualClock::new(T0).shared()).await;
        let peer = edge();
        let ack = events(&state, peer, batch(&peer, &["a"])).await;
        assert_eq!(ack, EventAck::Refused(EventRefusal::NotEnrolled));
        assert_eq!(count(&state).await, 0);
    }

    #[tokio::test]
    async fn a_database_failure_is_retryable_and_the_retry_stores_once() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = crate::state::for_tests(clock.shared()).await;
        let peer = edge();
        let p = peer.to_string();
        state
            .db
            .call(move |c| db::tests::enrolled(c, &p, T0))
            .await
            .unwrap();

        // The events table is gone for a while: the vm cannot write.
        state
            .db
            .call(|c| Ok(c.execute_batch("ALTER TABLE events RENAME TO events_away")?))
            .await
            .unwrap();
        let ack = events(&state, peer, batch(&peer, &["a", "b"])).await;
        let EventAck::Refused(refusal) = &ack else {
            panic!("stored without a table: {ack:?}")
        };
        assert!(
            matches!(refusal, EventRefusal::StorageUnavailable(_)) && refusal.is_retryable(),
            "{refusal:?}"
        );

        // Back: the edge's retry is stored, and a second retry adds nothing.
        state
            .db
            .call(|c| Ok(c.execute_batch("ALTER TABLE events_away RENAME TO events")?))
            .await
            .unwrap();
        clock.advance(std::time::Duration::from_secs(1));
        for _ in 0..2 {
            let ack = events(&state, peer, batch(&peer, &["a", "b"])).await;
            assert_eq!(
                ack,
                EventAck::Stored {
                    event_ids: vec!["a".into(), "b".into()]
                }
            );
        }
        assert_eq!(count(&state).await, 2);
        let a = state.db.call(|c| db::event(c, "a")).await.unwrap().unwrap();
        assert_eq!(a.received_at_ms, T0 + 1000, "received at the vm's clock");
        assert_eq!(state.metrics.events_stored.get(), 2);
    }

    #[tokio::test]
    async fn a_batch_naming_another_edge_is_refused_as_wrong_tenant() {
        let (_dir, state) = crate::state::for_tests(ManualClock::new(T0).shared()).await;
        let peer = edge();
        let p = peer.to_string();
        state
            .db
            .call(move |c| db::tests::enrolled(c, &p, T0))
            .await
            .unwrap();
        let mut b = batch(&peer, &["a"]);
        b.events[0].edge_id = "someone-else".into();
        let ack = events(&state, peer, b).await;
        assert_eq!(
            ack,
            EventAck::Refused(EventRefusal::WrongTenant {
                event_id: "a".into()
            })
        );
        assert_eq!(count(&state).await, 0);
    }
}
