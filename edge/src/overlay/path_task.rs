//! Probes the vm's WireGuard port every second on the tunnel's own socket and moves the vm
//! peer's endpoint between UDP and the relay stream as [`guardian_overlay::path`] decides.
//! After each move it sends one datagram into the tunnel (to the vm's discard port), so the
//! vm sees an authenticated packet from the new path at once and answers that way.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use guardian_node::{NodeHandle, PeerId};
use guardian_overlay::device::OverlayDevice;
use guardian_overlay::keys::PublicKey;
use guardian_overlay::path::{Path, PathRule, PathState};
use guardian_overlay::transport::virtual_endpoint;
use tokio::sync::watch;

/// Between probes.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long opening the relay stream may take.
const OPEN_WITHIN: Duration = Duration::from_secs(10);

/// The edge's label for its relay stream to the vm.
pub fn relay_endpoint() -> SocketAddr {
    virtual_endpoint(1)
}

/// What the task works with.
pub struct PathTask {
    /// The device.
    pub device: Arc<OverlayDevice>,
    /// The vm's WireGuard key.
    pub vm_key: PublicKey,
    /// The vm's UDP endpoint.
    pub vm_udp: SocketAddr,
    /// The vm's overlay address (for the datagram after a move).
    pub vm_overlay: Ipv6Addr,
    /// The node, for the relay stream.
    pub handle: NodeHandle,
    /// The vm's peer id.
    pub vm: PeerId,
    /// Time.
    pub clock: SharedClock,
    /// The rule's constants.
    pub rule: PathRule,
    /// The path in use, for telemetry and the API.
    pub path: watch::Sender<Option<Path>>,
}

impl PathTask {
    /// Runs until `stop`.
    pub async fn run(self, stop: Shutdown) {
        let mut state = PathState::new(self.rule, self.clock.monotonic());
        let mut answers = self.device.hub().probe_answers();
        let mut relay: Option<tokio::task::JoinHandle<()>> = None;
        let mut nonce = 0u64;
        self.path.send_replace(Some(Path::Udp));
        'probing: loop {
            nonce += 1;
            if let Err(e) = self.device.hub().send_probe(self.vm_udp, nonce) {
                tracing::debug!(error = %e, "cannot send the UDP probe");
            }
            state.on_probe_sent(self.clock.monotonic());
            let tick = self.clock.sleep(PROBE_EVERY);
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    _ = stop.wait() => break 'probing,
                    _ = &mut tick => break,
                    r = answers.changed() => match r {
                        Ok(()) => state.on_answer(self.clock.monotonic()),
                        Err(_) => break 'probing,
                    },
                }
            }
            let moved = state.update(self.clock.monotonic());
            if state.current() == Path::Stream && relay.as_ref().is_none_or(|t| t.is_finished()) {
                relay = Some(tokio::spawn(open_relay(
                    self.handle.clone(),
                    self.vm,
                    self.device.clone(),
                    self.vm_overlay,
                )));
            }
            if let Some(p) = moved {
                let endpoint = match p {
                    Path::Udp => self.vm_udp,
                    Path::Stream => relay_endpoint(),
                };
                match self.device.set_endpoint(&self.vm_key, endpoint).await {
                    Ok(_) => tracing::info!(path = p.as_str(), "the tunnel to the vm moved"),
                    Err(e) => tracing::warn!(error = %e, "cannot move the tunnel"),
                }
                self.path.send_replace(Some(p));
                poke(self.vm_overlay);
            }
        }
        if let Some(t) = relay {
            t.abort();
        }
    }
}

/// Opens `/guardian/wg-relay/1` to the vm and carries the tunnel's packets over it until it
/// ends.
async fn open_relay(
    handle: NodeHandle,
    vm: PeerId,
    device: Arc<OverlayDevice>,
    vm_overlay: Ipv6Addr,
) {
    let mut control = handle.streams();
    let protocol = guardian_node::StreamProtocol::new(protocols::messages::WG_RELAY);
    let stream = match tokio::time::timeout(OPEN_WITHIN, control.open_stream(vm, protocol)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot open the relay stream to the vm");
            return;
        }
        Err(_) => {
            tracing::warn!("opening the relay stream to the vm timed out");
            return;
        }
    };
    tracing::info!("the tunnel's relay stream to the vm is open");
    let pumping = guardian_overlay::relay::pump(stream, relay_endpoint(), device.hub().clone());
    tokio::pin!(pumping);
    // The datagram sent when the path moved may have gone before the stream was open (the
    // libp2p connection itself moves to TCP when UDP is blocked): once it is attached, one
    // more, so the vm answers over the stream at once.
    let ended = tokio::select! {
        r = &mut pumping => Some(r),
        _ = tokio::time::sleep(Duration::from_millis(50)) => None,
    };
    let ended = match ended {
        Some(r) => r,
        None => {
            poke(vm_overlay);
            pumping.await
        }
    };
    if let Err(e) = ended {
        tracing::info!(error = %e, "the relay stream to the vm ended");
    }
}

/// One datagram into the tunnel (the vm's discard port), so the vm sees the new path.
pub fn poke(vm_overlay: Ipv6Addr) {
    if let Ok(s) = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)) {
        let _ = s.send_to(b"guardian overlay path", (vm_overlay, 9));
    }
}
