//! The userspace WireGuard device: GotaTun on a TUN interface, over the [`MuxFactory`]
//! transport, with the cross-platform UAPI socket `/var/run/wireguard/<interface>.sock` (so
//! `wg show` reads it). Addresses, MTU and routes are set with `ip`; the vm also turns on
//! forwarding, so owner devices reach edges through it.
//!
//! Needs root (or CAP_NET_ADMIN) and `/dev/net/tun`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use gotatun::device::{Device, Peer, uapi::UapiServer};
use gotatun::tun::tun_async_device::TunDevice;
use gotatun::x25519;
use ipnetwork::IpNetwork;

use crate::addressing::{OverlayPrefixes, PeerAddresses};
use crate::keys::{PublicKey, SecretKey};
use crate::transport::{Hub, MuxFactory};

/// WireGuard's usual MTU on a 1500-byte path.
pub const DEFAULT_MTU: u16 = 1420;

/// Why the device cannot be brought up or changed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The TUN interface cannot be made (not root, no `/dev/net/tun`, the name is taken).
    #[error(
        "cannot create the TUN interface {0}: {1} (needs root or CAP_NET_ADMIN and /dev/net/tun)"
    )]
    Tun(String, String),
    /// `ip` failed.
    #[error("cannot configure {0}: {1}")]
    Setup(String, String),
    /// GotaTun refused.
    #[error("WireGuard device: {0}")]
    Device(String),
    /// A setting that does not parse.
    #[error("{0}")]
    Invalid(String),
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// The interface name (at most 15 characters; also names the UAPI socket).
    pub interface: String,
    /// This node's private key.
    pub secret: SecretKey,
    /// The UDP port (0: any).
    pub listen_port: u16,
    /// This node's overlay addresses.
    pub addresses: PeerAddresses,
    /// The overlay (routed to the interface).
    pub prefixes: OverlayPrefixes,
    /// The interface's MTU.
    pub mtu: u16,
    /// Answer probes (the vm).
    pub answer_probes: bool,
    /// Forward between peers (the vm).
    pub forward: bool,
}

/// A peer to add or update.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// Its public key.
    pub public_key: PublicKey,
    /// Where to send (or `None`: wait for it to come).
    pub endpoint: Option<SocketAddr>,
    /// What it may send from and what is routed to it (`address/length`).
    pub allowed_ips: Vec<String>,
    /// Persistent keepalive, seconds.
    pub keepalive: Option<u16>,
}

/// A peer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its public key.
    pub public_key: PublicKey,
    /// Its current endpoint (a virtual one when it uses a relay stream).
    pub endpoint: Option<SocketAddr>,
    /// Time since the last completed handshake.
    pub last_handshake: Option<Duration>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
}

type Transports = (MuxFactory, TunDevice, TunDevice);

/// A running device. [`OverlayDevice::stop`] takes it down (the interface goes with it).
pub struct OverlayDevice {
    device: Device<Transports>,
    hub: Hub,
    interface: String,
}

impl OverlayDevice {
    /// Creates the TUN interface and the device, sets addresses and routes.
    pub async fn start(spec: DeviceSpec) -> Result<OverlayDevice, DeviceError> {
        if spec.interface.is_empty() || spec.interface.len() > 15 {
            return Err(DeviceError::Invalid(format!(
                "interface name {:?} must be 1 to 15 characters",
                spec.interface
            )));
        }
        let hub = Hub::new(spec.answer_probes);
        // The TUN first: when its name is taken, another device's UAPI socket (same name)
        // must not be replaced.
        let builder = gotatun::device::build()
            .with_udp(MuxFactory::new(hub.clone()))
            .create_tun(&spec.interface)
            .map_err(|e| DeviceError::Tun(spec.interface.clone(), e.to_string()))?;
        let uapi = UapiServer::default_unix_socket(&spec.interface, None, None)
            .map_err(|e| DeviceError::Device(format!("UAPI socket: {e}")))?;
        let device = builder
            .with_private_key(x25519::StaticSecret::from(spec.secret.bytes()))
            .with_listen_port(spec.listen_port)
            .with_uapi(uapi)
            .build()
            .await
            .map_err(|e| {
                let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", spec.interface));
                DeviceError::Device(e.to_string())
            })?;
        let this = OverlayDevice {
            device,
            hub,
            interface: spec.interface.clone(),
        };
        // GotaTun binds its UDP socket at `build` only when it has peers, and adding peers
        // later does not bind it: a reconfiguration does (clearing the no peers there are), so
        // probes are answered and handshakes heard from the start, and a taken port fails here.
        if let Err(e) = this.device.clear_peers().await {
            this.device.stop().await;
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", spec.interface));
            return Err(DeviceError::Device(format!(
                "UDP port {}: {e}",
                spec.listen_port
            )));
        }
        if let Err(e) = configure_interface(&spec) {
            this.device.stop().await;
            return Err(e);
        }
        Ok(this)
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Where relay streams attach, and the probes.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Adds the peer, or replaces all its settings.
    pub async fn set_peer(&self, spec: &PeerSpec) -> Result<(), DeviceError> {
        let mut allowed = Vec::new();
        for a in &spec.allowed_ips {
            allowed.push(
                a.parse::<IpNetwork>()
                    .map_err(|e| DeviceError::Invalid(format!("allowed ip {a}: {e}")))?,
            );
        }
        let mut peer =
            Peer::new(x25519::PublicKey::from(spec.public_key.0)).with_allowed_ips(allowed);
        peer.endpoint = spec.endpoint;
        peer.keepalive = spec.keepalive;
        self.device
            .add_or_update_peer(peer)
            .await
            .map_err(|e| DeviceError::Device(e.to_string()))
    }

    /// Points the peer at `endpoint` (a UDP address or a virtual one).
    pub async fn set_endpoint(
        &self,
        key: &PublicKey,
        endpoint: SocketAddr,
    ) -> Result<bool, DeviceError> {
        let key = x25519::PublicKey::from(key.0);
        self.device
            .write(async |d| {
                d.modify_peer(&key, |p| p.set_endpoint(Some(endpoint)))
                    .await
            })
            .await
            .map_err(|e| DeviceError::Device(e.to_string()))
    }

    /// Removes the peer at once (its sessions go with it). `false` when it was not there.
    pub async fn remove_peer(&self, key: &PublicKey) -> Result<bool, DeviceError> {
        self.device
            .remove_peer(&x25519::PublicKey::from(key.0))
            .await
            .map_err(|e| DeviceError::Device(e.to_string()))
    }

    /// Replaces this node's private key (sessions restart with a new handshake).
    pub async fn set_secret(&self, secret: &SecretKey) -> Result<(), DeviceError> {
        self.device
            .set_private_key(x25519::StaticSecret::from(secret.bytes()))
            .await
            .map_err(|e| DeviceError::Device(e.to_string()))
    }

    /// Every peer's state.
    pub async fn peers(&self) -> Vec<PeerStatus> {
        self.device
            .peers()
            .await
            .into_iter()
            .map(|p| PeerStatus {
                public_key: PublicKey(p.peer.public_key.to_bytes()),
                endpoint: p.peer.endpoint,
                last_handshake: p.stats.last_handshake,
                rx_bytes: p.stats.rx_bytes as u64,
                tx_bytes: p.stats.tx_bytes as u64,
            })
            .collect()
    }

    /// One peer's state.
    pub async fn peer(&self, key: &PublicKey) -> Option<PeerStatus> {
        self.peers()
            .await
            .into_iter()
            .find(|p| p.public_key == *key)
    }

    /// Takes the device and its interface down.
    pub async fn stop(self) {
        self.device.stop().await;
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", self.interface));
    }
}

fn ip(interface: &str, args: &[&str]) -> Result<(), DeviceError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| DeviceError::Setup(interface.into(), format!("ip: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DeviceError::Setup(
            interface.into(),
            format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// Addresses with the overlay's prefix lengths (so the kernel routes the overlay to the
/// interface), the MTU, up; forwarding at the vm.
fn configure_interface(spec: &DeviceSpec) -> Result<(), DeviceError> {
    let name = spec.interface.as_str();
    let mtu = spec.mtu.to_string();
    ip(name, &["link", "set", "dev", name, "mtu", &mtu])?;
    let v6 = format!("{}/64", spec.addresses.v6);
    ip(name, &["-6", "addr", "add", &v6, "dev", name, "nodad"])?;
    let v4 = format!("{}/{}", spec.addresses.v4, spec.prefixes.v4.len);
    ip(name, &["addr", "add", &v4, "dev", name])?;
    ip(name, &["link", "set", "dev", name, "up"])?;
    if spec.forward {
        for (file, what) in [
            ("/proc/sys/net/ipv4/ip_forward", "IPv4"),
            ("/proc/sys/net/ipv6/conf/all/forwarding", "IPv6"),
        ] {
            if std::fs::read_to_string(file).is_ok_and(|v| v.trim() == "1") {
                continue;
            }
            if let Err(e) = std::fs::write(file, "1") {
                tracing::warn!(error = %e, "cannot turn on {what} forwarding: owner devices will not reach the edges (set the sysctl)");
            }
        }
    }
    Ok(())
}
