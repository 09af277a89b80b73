//! A libp2p probe peer built on `guardian-node` (`netsim peer`): it takes its key and the
//! vm's address from an install package (the key is the package's enrollment identity,
//! derived from its token's secret: the vm admits it as an unspent package, and a probe never
//! enrolls), connects to the vm, and either listens through the
//! vm's relay or dials a peer through it, printing one JSON line per thing that happens:
//! `{"t": seconds since start, "event": ..., ...}`. Events: `started`, `vm_connected`,
//! `reserved`, `dialing`, `connected` (with `relayed`), `direct`, `hole_punch`, `error`,
//! `done`. A connection is direct when its remote address has no `/p2p-circuit`.

use std::path::Path;
use std::time::{Duration, Instant};

use guardian_node::{AllowList, Multiaddr, Node, NodeConfig, NodeEvent, PeerId, Role};
use libp2p::multiaddr::Protocol;
use protocols::package::InstallPackage;
use serde_json::json;

use crate::error::{Error, Result};

/// What the peer does.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Keep a relay reservation on the vm and accept connections.
    Listen,
    /// Dial this peer through the vm's relay.
    Dial(PeerId),
}

/// A probe peer's settings.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Listen or dial.
    pub mode: Mode,
    /// Stop this long after start (dialer: also after `hold` past the direct connection).
    pub timeout: Duration,
    /// How long the dialer stays after going direct.
    pub hold: Duration,
}

struct Out {
    start: Instant,
}

impl Out {
    fn emit(&self, event: &str, mut fields: serde_json::Value) {
        let t = (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        if let Some(map) = fields.as_object_mut() {
            map.insert("t".into(), json!(t));
            map.insert("event".into(), json!(event));
        }
        println!("{fields}");
    }
}

/// Runs the probe peer as the enrollment identity of `package`, with its vm, until done.
pub async fn run(package: &Path, options: PeerOptions) -> Result<()> {
    let out = Out {
        start: Instant::now(),
    };
    let file = std::fs::File::open(package)
        .map_err(|e| Error::io(format!("opening {}", package.display()), e))?;
    let pkg = InstallPackage::from_tar(file)
        .map_err(|e| Error::Invalid(format!("package {}: {e}", package.display())))?;
    let vm: PeerId = pkg
        .info
        .vm_peer_id
        .parse()
        .map_err(|e| Error::Invalid(format!("vm peer id: {e}")))?;
    let vm_addrs: Vec<Multiaddr> = pkg
        .info
        .vm_addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let key = pkg
        .info
        .enrollment_key()
        .map_err(|e| Error::Invalid(format!("package {}: {e}", package.display())))?;
    let mut config = NodeConfig::new(Role::Client, key);
    config.allow = AllowList::open();
    let node = Node::start(config)
        .await
        .map_err(|e| Error::Invalid(format!("starting the node: {e}")))?;
    let handle = node.handle.clone();
    let me = handle.peer_id();
    let mut events = handle.subscribe();
    out.emit("started", json!({ "peer": me.to_string() }));

    let deadline = tokio::time::Instant::now() + options.timeout;
    handle
        .keep_connected(vm, vm_addrs.clone())
        .await
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // The vm's address as connected (QUIC, or TCP where UDP is blocked).
    let vm_addr = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                out.emit("error", json!({ "error": "no connection to the vm" }));
                handle.shutdown().await;
                return Err(Error::Timeout {
                    what: "a connection to the vm".into(),
                    after: options.timeout,
                });
            }
            Ok(Ok(NodeEvent::Connected { peer, address, .. })) if peer == vm => {
                let addr: Multiaddr = address
                    .iter()
                    .filter(|p| !matches!(p, Protocol::P2p(_)))
                    .collect();
                out.emit("vm_connected", json!({ "address": addr.to_string() }));
                break addr;
            }
            Ok(_) => {}
        }
    };
    // Identify has to run both ways before our observed address is a hole-punch candidate.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut connected_at = None;
    let mut direct_at = None;
    match &options.mode {
        Mode::Listen => {
            handle
                .keep_relay_reservation(vm, vm_addr.clone())
                .await
                .map_err(|e| Error::Invalid(e.to_string()))?;
        }
        Mode::Dial(target) => {
            let circuit = vm_addr
                .clone()
                .with(Protocol::P2p(vm))
                .with(Protocol::P2pCircuit)
                .with(Protocol::P2p(*target));
            out.emit("dialing", json!({ "address": circuit.to_string() }));
            let h = handle.clone();
            let target = *target;
            // The dial's result arrives as events; a failure is reported and retried once.
            tokio::spawn(async move {
                for attempt in 0..3 {
                    match tokio::time::timeout(
                        Duration::from_secs(20),
                        h.dial(target, vec![circuit.clone()]),
                    )
                    .await
                    {
                        Ok(Ok(())) => return,
                        Ok(Err(e)) => println!(
                            "{}",
                            json!({"event": "dial_failed", "attempt": attempt, "error": e.to_string()})
                        ),
                        Err(_) => println!(
                            "{}",
                            json!({"event": "dial_failed", "attempt": attempt, "error": "timeout"})
                        ),
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }

    let stop_at = |direct: Option<Instant>| match (&options.mode, direct) {
        (Mode::Dial(_), Some(t)) => tokio::time::Instant::from_std(t + options.hold).min(deadline),
        _ => deadline,
    };
    let stop = guardian_node::process::shutdown_on_signal();
    loop {
        let until = stop_at(direct_at);
        let ev = tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            _ = stop.wait() => break,
            ev = events.recv() => ev,
        };
        match ev {
            Ok(NodeEvent::RelayReserved { relay }) => {
                out.emit("reserved", json!({ "relay": relay.to_string() }));
            }
            Ok(NodeEvent::Connected {
                peer,
                address,
                relayed,
                inbound,
            }) if peer != vm => {
                // guardian-node flags an inbound relayed connection by its remote address,
                // which for those is a bare `/p2p/<peer>`: only an IP address is direct.
                let relayed = relayed
                    || !address
                        .iter()
                        .any(|p| matches!(p, Protocol::Ip4(_) | Protocol::Ip6(_)));
                out.emit(
                    "connected",
                    json!({ "peer": peer.to_string(), "address": address.to_string(), "relayed": relayed, "inbound": inbound }),
                );
                if connected_at.is_none() {
                    connected_at = Some(out.start.elapsed().as_secs_f64());
                }
                if !relayed && direct_at.is_none() {
                    direct_at = Some(Instant::now());
                    out.emit(
                        "direct",
                        json!({ "peer": peer.to_string(), "address": address.to_string() }),
                    );
                }
            }
            Ok(NodeEvent::HolePunch { peer, direct }) => {
                out.emit(
                    "hole_punch",
                    json!({ "peer": peer.to_string(), "ok": direct }),
                );
            }
            Ok(NodeEvent::Disconnected { peer, remaining }) if peer != vm => {
                out.emit(
                    "disconnected",
                    json!({ "peer": peer.to_string(), "remaining": remaining }),
                );
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                out.emit("error", json!({ "error": format!("lost {n} events") }));
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    out.emit(
        "done",
        json!({
            "connected_at": connected_at,
            "direct_at": direct_at.map(|t| t.duration_since(out.start).as_secs_f64()),
        }),
    );
    handle.shutdown().await;
    Ok(())
}
