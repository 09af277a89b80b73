//! `/guardian/events/1`: event records from the edge, acknowledged by the vm once stored.
//!
//! The vm stores each record idempotently by `event_id` and then acks the ids it holds, so a
//! batch resent after a lost ack is stored once. An event travels as it happens: a record
//! when it opens (`state` open), again when it changes (a verdict, a better score) and when
//! it closes (its clip's CIDs); each has a higher `revision`, and the vm keeps the highest.

use serde::{Deserialize, Serialize};

use super::Category;
use crate::codec::WireMessage;

/// One detection event, as metadata: no frames, no video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unique per tenant; the idempotency key.
    pub event_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The edge's peer id.
    pub edge_id: String,
    /// The camera.
    pub camera_id: String,
    /// Start, Unix ms.
    pub started_at_ms: u64,
    /// End, Unix ms (equal to start while the event is open).
    pub ended_at_ms: u64,
    /// What was seen.
    pub category: Category,
    /// Best score in thousandths.
    pub score_milli: u16,
    /// CID of the sealed clip (the age file playback streams and the archive holds).
    #[serde(default)]
    pub clip_cid: Option<String>,
    /// CID of the sealed snapshot, if one was taken.
    #[serde(default)]
    pub snapshot_cid: Option<String>,
    /// CID of the sealed thumbnail, if one was taken.
    #[serde(default)]
    pub thumbnail_cid: Option<String>,
    /// The clip ends early: recovered after the edge stopped mid-event.
    #[serde(default)]
    pub truncated: bool,
    /// Open while the event goes on, closed at its end (older edges send only closed ones).
    #[serde(default)]
    pub state: EventState,
    /// Increases with each record of the event; the vm keeps the highest (0 from older edges).
    #[serde(default)]
    pub revision: u32,
    /// When the edge confirmed the object and opened the event, Unix ms (0: not said).
    #[serde(default)]
    pub confirmed_at_ms: u64,
    /// The camera's named zones the object was seen in.
    #[serde(default)]
    pub zones: Vec<String>,
    /// The second model's look at the object, on the edge.
    #[serde(default)]
    pub verification: Option<Verification>,
}

impl Default for EventRecord {
    fn default() -> Self {
        EventRecord {
            event_id: String::new(),
            tenant_id: String::new(),
            edge_id: String::new(),
            camera_id: String::new(),
            started_at_ms: 0,
            ended_at_ms: 0,
            category: Category::Person,
            score_milli: 0,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            state: EventState::Closed,
            revision: 0,
            confirmed_at_ms: 0,
            zones: Vec::new(),
            verification: None,
        }
    }
}

/// Whether an event goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// The object is (or was just) in view; the clip is being recorded.
    Open,
    /// Ended; the clip is sealed.
    #[default]
    Closed,
}

impl EventState {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Open => "open",
            EventState::Closed => "closed",
        }
    }
}

/// The second, stronger model's verdict on an event's object, made on the edge (a crop of
/// the frame never leaves it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The model that looked (`centernet`).
    pub model: String,
    /// What it said.
    pub verdict: Verdict,
    /// Its best score for the category in the crop, thousandths.
    pub score_milli: u16,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It sees the object too.
    Confirmed,
    /// It does not.
    Rejected,
    /// It is looking (a record with this is followed by one with the verdict).
    Pending,
    /// It could not look (not loaded, failed).
    Unavailable,
}

/// A batch of event records (at most [`EventBatch::MAX_EVENTS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The records.
    pub events: Vec<EventRecord>,
}

impl EventBatch {
    /// Most records in one batch.
    pub const MAX_EVENTS: usize = 256;
}

impl WireMessage for EventBatch {
    const NAME: &'static str = "EventBatch";
    const MAX_SIZE: usize = 256 * 1024;
}

/// The vm's answer to a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventAck {
    /// These ids are stored durably (new or already held).
    Stored {
        /// The ids.
        event_ids: Vec<String>,
    },
    /// The batch was refused as a whole. The edge keeps it: it sends it again with backoff
    /// when the refusal [`is_retryable`](EventRefusal::is_retryable), and parks it with the
    /// reason otherwise.
    Refused(EventRefusal),
}

/// Why the vm refused a batch of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EventRefusal {
    /// The sender is not an enrolled edge of this vm.
    #[error("this edge is not enrolled")]
    NotEnrolled,
    /// A record names another tenant or another edge than the sender.
    #[error("event {event_id} names another tenant or edge")]
    WrongTenant {
        /// The record.
        event_id: String,
    },
    /// A record is invalid (empty or overlong ids, times, score, too many records).
    #[error("invalid event batch: {0}")]
    Malformed(String),
    /// The vm could not read or write its database for now; send the batch again later.
    #[error("the vm's storage is unavailable: {0}")]
    StorageUnavailable(String),
}

impl EventRefusal {
    /// Whether sending the same batch again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EventRefusal::StorageUnavailable(_))
    }
}

impl WireMessage for EventAck {
    const NAME: &'static str = "EventAck";
    const MAX_SIZE: usize = 64 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    pub(crate) fn record(i: u32) -> EventRecord {
        EventRecord {
            event_id: format!("ev-{i}"),
            tenant_id: "tenant-a".into(),
            edge_id: "12D3KooWexample".into(),
            camera_id: "front-door".into(),
            started_at_ms: 1_790_000_000_000,
            ended_at_ms: 1_790_000_012_000,
            category: if i.is_multiple_of(2) {
                Category::Person
            } else {
                Category::Other("dog".into())
            },
            score_milli: 870,
            clip_cid: Some("clip-1".into()),
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            state: if i.is_multiple_of(3) {
                EventState::Open
            } else {
                EventState::Closed
            },
            revision: i,
            confirmed_at_ms: 1_790_000_000_400,
            zones: vec!["driveway".into()],
            verification: Some(Verification {
                model: "centernet".into(),
                verdict: Verdict::Confirmed,
                score_milli: 610,
            }),
        }
    }

    #[test]
    fn event_batch() {
        conformance::check(&EventBatch {
            events: (0..3).map(record).collect(),
        });
        conformance::check_encoder_limit(&EventBatch {
            events: (0..5000).map(record).collect(),
        });
    }

    #[test]
    fn a_full_batch_fits() {
        let full = EventBatch {
            events: (0..EventBatch::MAX_EVENTS as u32).map(record).collect(),
        };
        crate::codec::encode(&full).expect("MAX_EVENTS ordinary records fit in MAX_SIZE");
    }

    #[test]
    fn event_ack() {
        conformance::check(&EventAck::Stored {
            event_ids: vec!["ev-1".into(), "ev-2".into()],
        });
        for refusal in [
            EventRefusal::NotEnrolled,
            EventRefusal::WrongTenant {
                event_id: "ev-1".into(),
            },
            EventRefusal::Malformed("ids must not be empty".into()),
            EventRefusal::StorageUnavailable("disk full".into()),
        ] {
            conformance::check(&EventAck::Refused(refusal));
        }
    }

    #[test]
    fn only_storage_failures_are_retried() {
        assert!(EventRefusal::StorageUnavailable("database locked".into()).is_retryable());
        for final_refusal in [
            EventRefusal::NotEnrolled,
            EventRefusal::WrongTenant {
                event_id: "e".into(),
            },
            EventRefusal::Malformed("x".into()),
        ] {
            assert!(!final_refusal.is_retryable(), "{final_refusal}");
        }
    }
}
