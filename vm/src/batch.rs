//! The checks of an event batch from an edge, pure: size, tenant and edge of each record,
//! ids, times and score. Every refusal here is final (the edge parks the batch); storage
//! failures are decided by the handler, not here.

use protocols::messages::events::{EventBatch, EventRefusal};
use protocols::messages::valid_id;

/// Checks a batch sent by `peer` to the vm of `tenant_id`.
pub fn check_batch(tenant_id: &str, peer: &str, batch: &EventBatch) -> Result<(), EventRefusal> {
    if batch.events.len() > EventBatch::MAX_EVENTS {
        return Err(EventRefusal::Malformed(format!(
            "more than {} events in one batch",
            EventBatch::MAX_EVENTS
        )));
    }
    for e in &batch.events {
        if e.tenant_id != tenant_id || e.edge_id != peer {
            return Err(EventRefusal::WrongTenant {
                event_id: e.event_id.clone(),
            });
        }
        if !valid_id(&e.event_id) || !valid_id(&e.camera_id) {
            return Err(EventRefusal::Malformed(format!(
                "event {} has an invalid event or camera id",
                e.event_id
            )));
        }
        if e.ended_at_ms < e.started_at_ms || e.score_milli > 1000 {
            return Err(EventRefusal::Malformed(format!(
                "event {} has an end before its start or a score over 1000",
                e.event_id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::messages::Category;
    use protocols::messages::events::EventRecord;

    fn record(id: &str) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            tenant_id: "t".into(),
            edge_id: "edge".into(),
            camera_id: "front".into(),
            started_at_ms: 10,
            ended_at_ms: 20,
            category: Category::Person,
            score_milli: 900,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
        }
    }

    fn batch(events: Vec<EventRecord>) -> EventBatch {
        EventBatch { events }
    }

    #[test]
    fn a_good_batch_passes_and_an_empty_one_too() {
        assert_eq!(
            check_batch("t", "edge", &batch(vec![record("a"), record("b")])),
            Ok(())
        );
        assert_eq!(check_batch("t", "edge", &batch(vec![])), Ok(()));
    }

    #[test]
    fn each_refusal_is_typed_and_final() {
        let check = |e: EventRecord| check_batch("t", "edge", &batch(vec![record("ok"), e]));
        let mut other_tenant = record("x");
        other_tenant.tenant_id = "t2".into();
        assert_eq!(
            check(other_tenant),
            Err(EventRefusal::WrongTenant {
                event_id: "x".into()
            })
        );
        let mut other_edge = record("y");
        other_edge.edge_id = "someone-else".into();
        assert_eq!(
            check(other_edge),
            Err(EventRefusal::WrongTenant {
                event_id: "y".into()
            })
        );
        let mut bad_camera = record("z");
        bad_camera.camera_id = "Front Door".into();
        assert!(matches!(check(bad_camera), Err(EventRefusal::Malformed(_))));
        assert!(matches!(
            check(record("Bad Id")),
            Err(EventRefusal::Malformed(_))
        ));
        let mut backwards = record("w");
        backwards.ended_at_ms = 5;
        assert!(matches!(check(backwards), Err(EventRefusal::Malformed(_))));
        let mut score = record("v");
        score.score_milli = 1001;
        assert!(matches!(check(score), Err(EventRefusal::Malformed(_))));
        for r in [
            EventRefusal::WrongTenant {
                event_id: "x".into(),
            },
            EventRefusal::Malformed(String::new()),
        ] {
            assert!(!r.is_retryable(), "{r:?}");
        }
    }

    #[test]
    fn too_many_events_are_malformed() {
        let many = (0..=EventBatch::MAX_EVENTS)
            .map(|i| record(&format!("e{i}")))
            .collect();
        assert!(matches!(
            check_batch("t", "edge", &batch(many)),
            Err(EventRefusal::Malformed(_))
        ));
    }
}
