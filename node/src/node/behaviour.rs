//! The swarm: its transports (QUIC, TCP + Noise + Yamux, DNS, relay client) and the
//! [`Behaviour`] composed per role: the gate, identify, ping, the request-response protocols
//! as [`crate::protocol_table`] says the role speaks them, bulk streams, and the relay server
//! (vm) or DCUtR and AutoNAT v2 (edge, client).

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Swarm, autonat, dcutr, identify, noise, ping, relay, request_response, tcp, yamux};

use crate::config::{NodeConfig, Role};
use crate::error::NodeError;
use crate::gate::Gate;
use crate::protocol_table::{self, Enroll, Events, RrBehaviour, Telemetry};

/// A QUIC connection with no packet from the peer for this long is closed: with keep-alives
/// every [`QUIC_KEEP_ALIVE`], a dead peer is noticed within this bound.
pub(crate) const QUIC_IDLE: Duration = Duration::from_secs(10);
/// How often QUIC sends a keep-alive on an otherwise quiet connection.
pub(crate) const QUIC_KEEP_ALIVE: Duration = Duration::from_secs(3);
/// A QUIC dial that has not finished its handshake by then fails (and is redialed).
pub(crate) const QUIC_HANDSHAKE: Duration = Duration::from_secs(4);
/// How often each connection is pinged (TCP connections have no keep-alive of their own).
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(3);
/// A ping unanswered for this long fails (libp2p reports the second failure in a row; the
/// event loop closes a connection silent for `liveness::SILENCE_LIMIT` whatever it reports).
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Every behaviour of a node.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) gate: Gate,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) relay: Toggle<relay::Behaviour>,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) dcutr: Toggle<dcutr::Behaviour>,
    pub(crate) autonat: Toggle<autonat::v2::client::Behaviour>,
    pub(crate) enroll: RrBehaviour<Enroll>,
    pub(crate) events: RrBehaviour<Events>,
    pub(crate) telemetry: RrBehaviour<Telemetry>,
    pub(crate) stream: libp2p_stream::Behaviour,
}

/// Builds the swarm of `config`'s role (not yet listening).
pub(crate) fn build_swarm(config: &NodeConfig) -> Result<Swarm<Behaviour>, NodeError> {
    let keypair = crate::identity::keypair(&config.key);
    let transport_err = |e: &dyn std::fmt::Display| NodeError::Transport(e.to_string());
    let role = config.role;
    let relay_limits = config.relay_limits;
    let hole_punch = config.hole_punch;
    let allow = config.allow.clone();
    let agent = config.agent_version.clone();
    let rr_config =
        request_response::Config::default().with_request_timeout(config.request_timeout);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport_err(&e))?
        .with_quic_config(|mut c| {
            // Keep-alives every few seconds hold QUIC mappings open through home NATs, and a
            // peer that stops answering is dead after QUIC_IDLE (not the minute it was).
            c.max_idle_timeout = QUIC_IDLE.as_millis() as u32;
            c.keep_alive_interval = QUIC_KEEP_ALIVE;
            c.handshake_timeout = QUIC_HANDSHAKE;
            c
        })
        .with_dns()
        .map_err(|e| transport_err(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport_err(&e))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            Behaviour {
                gate: Gate::new(allow),
                identify: identify::Behaviour::new(
                    identify::Config::new("/guardian/1.0.0".into(), key.public())
                        .with_agent_version(agent),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(PING_INTERVAL)
                        .with_timeout(PING_TIMEOUT),
                ),
                relay: Toggle::from(
                    (role == Role::Vm)
                        .then(|| relay::Behaviour::new(peer_id, relay_limits.to_config())),
                ),
                relay_client,
                dcutr: Toggle::from(hole_punch.then(|| dcutr::Behaviour::new(peer_id))),
                autonat: Toggle::from(
                    (role != Role::Vm).then(autonat::v2::client::Behaviour::default),
                ),
                enroll: protocol_table::behaviour::<Enroll>(role, rr_config.clone()),
                events: protocol_table::behaviour::<Events>(role, rr_config.clone()),
                telemetry: protocol_table::behaviour::<Telemetry>(role, rr_config.clone()),
                stream: libp2p_stream::Behaviour::new(),
            }
        })
        .map_err(|e| transport_err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    Ok(swarm)
}
