//! The typed messages of each libp2p protocol, and the protocol ids.
//!
//! Every protocol id is versioned (`/guardian/<name>/1`); a message's envelope version (see
//! [`crate::codec`]) is bumped with it. Times are Unix milliseconds; ids are strings checked by
//! [`valid_id`] where they become file names, bucket names or object keys.

pub mod archive;
pub mod clips;
pub mod config;
pub mod discovery;
pub mod enroll;
pub mod events;
pub mod telemetry;
pub mod thumbnails;
pub mod wg;

/// `/guardian/enroll/1`: an edge's first contact, its enrollment token against its config.
pub const ENROLL: &str = "/guardian/enroll/1";
/// `/guardian/events/1`: event records from edge to vm, acknowledged once stored.
pub const EVENTS: &str = "/guardian/events/1";
/// `/guardian/telemetry/1`: periodic health reports from edge to vm.
pub const TELEMETRY: &str = "/guardian/telemetry/1";
/// `/guardian/archive/1`: a stream carrying a signed manifest and its sealed objects.
pub const ARCHIVE: &str = "/guardian/archive/1";
/// `/guardian/clips/1`: a stream playing a local clip from the edge to the owner.
pub const CLIPS: &str = "/guardian/clips/1";
/// `/guardian/thumbnails/1`: an event's sealed thumbnail, edge to vm, beside its metadata.
pub const THUMBNAILS: &str = "/guardian/thumbnails/1";
/// `/guardian/wg/1`: WireGuard peer negotiation between edge and vm.
pub const WG: &str = "/guardian/wg/1";
/// `/guardian/wg-relay/1`: the WireGuard tunnel's packets over the libp2p connection, when
/// UDP does not pass (length-prefixed frames, both ways).
pub const WG_RELAY: &str = "/guardian/wg-relay/1";
/// `/guardian/config/1`: versioned configuration sections (key slots, ...) pushed from vm to
/// edge.
pub const CONFIG: &str = "/guardian/config/1";
/// `/guardian/config-change/1`: cameras changed on the edge's box, reported to the vm, which
/// owns the configuration.
pub const CONFIG_CHANGE: &str = "/guardian/config-change/1";

/// `/guardian/discovery/1`: cameras the edge found on its LAN, reported to the vm.
pub const DISCOVERY: &str = "/guardian/discovery/1";
/// `/guardian/scan/1`: the vm asks an edge to look for cameras now.
pub const SCAN: &str = "/guardian/scan/1";
/// `/guardian/snapshot/1`: the vm asks an edge for a camera's current picture, sealed.
pub const SNAPSHOT: &str = "/guardian/snapshot/1";

/// All protocol ids, for listings and tests.
pub const ALL: [&str; 13] = [
    ENROLL,
    EVENTS,
    TELEMETRY,
    ARCHIVE,
    CLIPS,
    THUMBNAILS,
    WG,
    WG_RELAY,
    CONFIG,
    CONFIG_CHANGE,
    DISCOVERY,
    SCAN,
    SNAPSHOT,
];

/// Whether `id` is usable as a camera, event or edge name in paths and bucket names:
/// 1 to 48 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 48
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// A detection category, as COCO names it where it can.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A person.
    Person,
    /// A bicycle.
    Bicycle,
    /// A car.
    Car,
    /// A motorcycle.
    Motorcycle,
    /// A bus.
    Bus,
    /// A truck.
    Truck,
    /// Any other label of a model, by name.
    #[serde(untagged)]
    Other(String),
}

impl Category {
    /// What a camera detects unless told otherwise: a person and the vehicles.
    pub fn defaults() -> Vec<Category> {
        vec![
            Category::Person,
            Category::Bicycle,
            Category::Car,
            Category::Motorcycle,
            Category::Bus,
            Category::Truck,
        ]
    }

    /// The category's name (`person`, `car`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Category::Person => "person",
            Category::Bicycle => "bicycle",
            Category::Car => "car",
            Category::Motorcycle => "motorcycle",
            Category::Bus => "bus",
            Category::Truck => "truck",
            Category::Other(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_versioned_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for id in ALL {
            assert!(id.starts_with("/guardian/") && id.ends_with("/1"), "{id}");
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn valid_ids() {
        for ok in ["front-door", "cam1", "a"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Front", "a/b", "a.b", &"x".repeat(49)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
