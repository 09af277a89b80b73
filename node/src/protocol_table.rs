//! The request-response protocols, declared once: each protocol's id (from
//! `protocols::messages`), its request and response types, which roles serve it (answer
//! inbound requests) and which send it. The swarm's behaviour is built from this table per
//! [`Role`]: a role that only sends a protocol does not negotiate it inbound, so a request on
//! it is refused by libp2p (unsupported protocol) and never reaches the application.
//!
//! | protocol | id | served by | sent by |
//! |---|---|---|---|
//! | [`Enroll`] | `/guardian/enroll/1` | vm | edge, client |
//! | [`Events`] | `/guardian/events/1` | vm | edge, client |
//! | [`Telemetry`] | `/guardian/telemetry/1` | vm | edge, client |
//!
//! The bulk protocols (clips, archive, ...) are `libp2p-stream` protocols: each side accepts
//! the streams it serves, so they are not in this table.

use libp2p::StreamProtocol;
use libp2p::request_response::{self, ProtocolSupport};
use protocols::codec::WireMessage;
use protocols::messages::enroll::{EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch};
use protocols::messages::telemetry::{TelemetryAck, TelemetryReport};

use crate::codec::FrameCodec;
use crate::config::Role;

/// One request-response protocol: its id and who speaks it which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolSpec {
    /// A short name, for logs.
    pub name: &'static str,
    /// The protocol id.
    pub id: &'static str,
    /// Roles that answer requests on it.
    pub served_by: &'static [Role],
    /// Roles that send requests on it.
    pub sent_by: &'static [Role],
}

impl ProtocolSpec {
    /// Whether `role` answers requests on this protocol.
    pub fn serves(&self, role: Role) -> bool {
        self.served_by.contains(&role)
    }

    /// Whether `role` sends requests on this protocol.
    pub fn sends(&self, role: Role) -> bool {
        self.sent_by.contains(&role)
    }

    /// How `role` supports this protocol; `None` when it neither serves nor sends it.
    pub fn support(&self, role: Role) -> Option<ProtocolSupport> {
        match (self.serves(role), self.sends(role)) {
            (true, true) => Some(ProtocolSupport::Full),
            (true, false) => Some(ProtocolSupport::Inbound),
            (false, true) => Some(ProtocolSupport::Outbound),
            (false, false) => None,
        }
    }
}

/// A request-response protocol of the table, with its request and response types.
pub trait RequestProtocol {
    /// What the sender sends.
    type Request: WireMessage + Send + Sync + 'static;
    /// What the server answers.
    type Response: WireMessage + Send + Sync + 'static;
    /// Its id and roles.
    const SPEC: ProtocolSpec;
}

/// The vm alone serves the request-response protocols.
const SERVERS: &[Role] = &[Role::Vm];
/// Edges and clients send them.
const SENDERS: &[Role] = &[Role::Edge, Role::Client];

/// `/guardian/enroll/1`: an edge enrolls with its install token.
#[derive(Debug)]
pub enum Enroll {}

impl RequestProtocol for Enroll {
    type Request = EnrollRequest;
    type Response = EnrollResponse;
    const SPEC: ProtocolSpec = ProtocolSpec {
        name: "enroll",
        id: protocols::messages::ENROLL,
        served_by: SERVERS,
        sent_by: SENDERS,
    };
}

/// `/guardian/events/1`: an edge delivers event records.
#[derive(Debug)]
pub enum Events {}

impl RequestProtocol for Events {
    type Request = EventBatch;
    type Response = EventAck;
    const SPEC: ProtocolSpec = ProtocolSpec {
        name: "events",
        id: protocols::messages::EVENTS,
        served_by: SERVERS,
        sent_by: SENDERS,
    };
}

/// `/guardian/telemetry/1`: an edge reports its health.
#[derive(Debug)]
pub enum Telemetry {}

impl RequestProtocol for Telemetry {
    type Request = TelemetryReport;
    type Response = TelemetryAck;
    const SPEC: ProtocolSpec = ProtocolSpec {
        name: "telemetry",
        id: protocols::messages::TELEMETRY,
        served_by: SERVERS,
        sent_by: SENDERS,
    };
}

/// Every request-response protocol.
pub const TABLE: [ProtocolSpec; 3] = [Enroll::SPEC, Events::SPEC, Telemetry::SPEC];

/// The libp2p behaviour of protocol `P`.
pub type RrBehaviour<P> = request_response::Behaviour<
    FrameCodec<<P as RequestProtocol>::Request, <P as RequestProtocol>::Response>,
>;

/// The behaviour of protocol `P` for `role`, as the table says (no protocol at all when the
/// role neither serves nor sends it: its requests then fail as unsupported).
pub fn behaviour<P: RequestProtocol>(
    role: Role,
    config: request_response::Config,
) -> RrBehaviour<P> {
    let protocols = P::SPEC
        .support(role)
        .map(|support| (StreamProtocol::new(P::SPEC.id), support));
    request_response::Behaviour::new(protocols, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 3] = [Role::Vm, Role::Edge, Role::Client];

    #[test]
    fn the_vm_serves_every_protocol_and_sends_none() {
        for spec in TABLE {
            let support = spec.support(Role::Vm).expect("the vm speaks it");
            assert!(support.inbound(), "{}", spec.name);
            assert!(!support.outbound(), "{}", spec.name);
        }
    }

    #[test]
    fn edges_and_clients_only_send() {
        for role in [Role::Edge, Role::Client] {
            for spec in TABLE {
                assert!(!spec.serves(role), "{role:?} serves {}", spec.name);
                let support = spec.support(role).expect("it sends");
                assert!(support.outbound(), "{role:?} {}", spec.name);
                assert!(!support.inbound(), "{role:?} {}", spec.name);
            }
        }
    }

    #[test]
    fn every_protocol_is_served_by_some_role_and_sent_by_another() {
        for spec in TABLE {
            let servers: Vec<_> = ROLES.into_iter().filter(|r| spec.serves(*r)).collect();
            let senders: Vec<_> = ROLES.into_iter().filter(|r| spec.sends(*r)).collect();
            assert!(!servers.is_empty(), "{} has no server", spec.name);
            assert!(!senders.is_empty(), "{} has no sender", spec.name);
        }
    }

    #[test]
    fn every_protocol_id_appears_once() {
        let mut ids: Vec<&str> = TABLE.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len(), "{TABLE:?}");
        let mut names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        for spec in TABLE {
            assert!(
                protocols::messages::ALL.contains(&spec.id),
                "{} is not a protocols::messages id",
                spec.id
            );
            // A valid libp2p protocol id.
            assert!(StreamProtocol::try_from_owned(spec.id.to_owned()).is_ok());
        }
        assert_eq!(
            [Enroll::SPEC.id, Events::SPEC.id, Telemetry::SPEC.id],
            [
                protocols::messages::ENROLL,
                protocols::messages::EVENTS,
                protocols::messages::TELEMETRY
            ]
        );
    }

    #[test]
    fn a_role_that_neither_serves_nor_sends_has_no_support() {
        let spec = ProtocolSpec {
            name: "x",
            id: "/x/1",
            served_by: &[Role::Vm],
            sent_by: &[Role::Edge],
        };
        assert!(spec.support(Role::Client).is_none());
        assert!(
            spec.support(Role::Vm)
                .is_some_and(|s| s.inbound() && !s.outbound())
        );
        let both = ProtocolSpec {
            sent_by: &[Role::Vm],
            ..spec
        };
        assert!(
            both.support(Role::Vm)
                .is_some_and(|s| s.inbound() && s.outbound())
        );
    }
}
