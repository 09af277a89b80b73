//! The edge's side of the WireGuard overlay (`docs/overlay.md`).
//!
//! Once the edge is enrolled and connected, it offers its WireGuard public key over
//! `/guardian/wg/1` ([`key_file`]: made here, the private key never leaves the box) and the
//! vm answers with the tunnel's settings. The edge then brings up its userspace device
//! ([`guardian_overlay::device`]), points it at the vm's UDP port, starts the path task
//! ([`path_task`]: UDP, or the relay stream when UDP does not pass) and serves its local API
//! and web app on its overlay addresses (`[wg] api_port`).
//!
//! It offers again every `recheck_secs` the vm gives: a restarted vm, a new vm key or
//! endpoint, or an admin's rotation request reach it that way. A rotation (scheduled by
//! `[wg] rotate_hours`, or asked) stores the next key, offers it, and swaps the device's key
//! once the vm holds it.
//!
//! Nothing here stops the edge: without root, `/dev/net/tun` or a vm that has the overlay
//! on, it says why and tries again later.

pub mod key_file;
pub mod path_task;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use guardian_node::clock::SharedClock;
use guardian_node::shutdown::Shutdown;
use guardian_node::{NodeHandle, PeerId};
use guardian_overlay::addressing::{Overlay4, OverlayPrefixes, PeerAddresses};
use guardian_overlay::device::{DEFAULT_MTU, DeviceSpec, OverlayDevice, PeerSpec};
use guardian_overlay::keys::PublicKey;
use guardian_overlay::path::{Path, PathRule};
use protocols::messages::wg::{WgAnswer, WgOffer, WgPeerConfig};
use tokio::sync::watch;

use crate::config::WgConfig;
use key_file::{WgKey, rotation_due};

/// After a failed offer (no connection, a timeout).
const RETRY: Duration = Duration::from_secs(10);
/// After a refusal.
const REFUSED_RETRY: Duration = Duration::from_secs(60);
/// How long one offer may take.
const OFFER_WITHIN: Duration = Duration::from_secs(15);
/// When the vm gives no recheck interval.
const DEFAULT_RECHECK: Duration = Duration::from_secs(60);

/// What the overlay task needs.
pub struct Context {
    /// The data folder (`wg.key`).
    pub data: PathBuf,
    /// `[wg]`.
    pub config: WgConfig,
    /// The node.
    pub handle: NodeHandle,
    /// The vm.
    pub vm: PeerId,
    /// Time.
    pub clock: SharedClock,
    /// The LAN API to serve on the overlay addresses, with its source allow-list.
    pub lan: Option<(Arc<crate::lan::Lan>, Vec<String>)>,
    /// The path in use (`None`: no tunnel).
    pub path: watch::Sender<Option<Path>>,
}

/// A tunnel that is up.
struct Up {
    device: Arc<OverlayDevice>,
    /// The generation of the key the device has.
    generation: u64,
    vm_key: PublicKey,
    vm_endpoint: String,
    path: Option<(Shutdown, tokio::task::JoinHandle<()>)>,
    lan: Vec<(Shutdown, tokio::task::JoinHandle<()>)>,
}

impl Up {
    async fn stop(self) {
        let tasks: Vec<_> = self.path.into_iter().chain(self.lan).collect();
        for (stop, task) in tasks {
            stop.trigger();
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        if let Ok(device) = Arc::try_unwrap(self.device) {
            device.stop().await;
        }
    }
}

/// Runs until `stop`.
pub async fn run(ctx: Context, stop: Shutdown) {
    if !ctx.config.enabled {
        return;
    }
    let mut key = match WgKey::load_or_make(&ctx.data, ctx.clock.wall_ms()) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "no WireGuard overlay: its key");
            return;
        }
    };
    let mut up: Option<Up> = None;
    let mut wait = Duration::ZERO;
    let mut last_problem = String::new();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = ctx.clock.sleep(wait) => {}
        }
        let problem = match step(&ctx, &mut key, &mut up, &stop).await {
            Ok(next) => {
                wait = next;
                String::new()
            }
            Err((next, e)) => {
                wait = next;
                format!("{e:#}")
            }
        };
        if problem != last_problem {
            if problem.is_empty() {
                tracing::info!("the WireGuard overlay is up");
            } else {
                tracing::warn!(problem = %problem, "the WireGuard overlay is not up; will try again");
            }
            last_problem = problem;
        }
    }
    if let Some(u) = up.take() {
        u.stop().await;
    }
    ctx.path.send_replace(None);
}

/// One offer and what follows; the wait before the next.
async fn step(
    ctx: &Context,
    key: &mut WgKey,
    up: &mut Option<Up>,
    stop: &Shutdown,
) -> Result<Duration, (Duration, anyhow::Error)> {
    if up.as_ref().is_some_and(|u| u.generation == key.generation)
        && rotation_due(key.made_ms, ctx.clock.wall_ms(), ctx.config.rotate_hours)
    {
        *key = key
            .rotate(&ctx.data, ctx.clock.wall_ms())
            .map_err(|e| (RETRY, e))?;
        tracing::info!(
            generation = key.generation,
            "WireGuard key rotation (scheduled)"
        );
    }
    if !matches!(ctx.handle.connection(ctx.vm).await, Ok(Some(_))) {
        return Err((RETRY, anyhow!("the vm is not connected")));
    }
    let answer = offer(ctx, key).await.map_err(|e| (RETRY, e))?;
    let cfg = match answer {
        WgAnswer::Refused { reason } => {
            return Err((
                REFUSED_RETRY,
                anyhow!("the vm refused the tunnel: {reason}"),
            ));
        }
        WgAnswer::Accepted(cfg) => cfg,
    };
    if cfg.generation != key.generation {
        return Err((
            RETRY,
            anyhow!(
                "the vm holds key generation {} and this edge has {}",
                cfg.generation,
                key.generation
            ),
        ));
    }
    apply(ctx, key, &cfg, up, stop)
        .await
        .map_err(|e| (REFUSED_RETRY, e))?;
    if cfg.rotate {
        *key = key
            .rotate(&ctx.data, ctx.clock.wall_ms())
            .map_err(|e| (RETRY, e))?;
        tracing::info!(
            generation = key.generation,
            "WireGuard key rotation (asked by the vm)"
        );
        return Ok(Duration::ZERO);
    }
    let recheck = if cfg.recheck_secs == 0 {
        DEFAULT_RECHECK
    } else {
        Duration::from_secs(u64::from(cfg.recheck_secs))
    };
    Ok(recheck)
}

async fn offer(ctx: &Context, key: &WgKey) -> Result<WgAnswer> {
    let mut control = ctx.handle.streams();
    let request = WgOffer {
        public_key: key.secret.public().0.to_vec(),
        generation: key.generation,
        api_port: ctx.config.api_port,
    };
    let (mut stream, answer) = tokio::time::timeout(
        OFFER_WITHIN,
        guardian_node::open_with_request::<_, WgAnswer>(
            &mut control,
            ctx.vm,
            protocols::messages::WG,
            &request,
        ),
    )
    .await
    .map_err(|_| anyhow!("the vm did not answer the WireGuard offer in time"))?
    .map_err(|e| anyhow!("WireGuard offer: {e}"))?;
    let _ = futures::AsyncWriteExt::close(&mut stream).await;
    Ok(answer)
}

/// The addresses and prefixes the answer gives this edge.
fn addressing(cfg: &WgPeerConfig) -> Result<(PeerAddresses, OverlayPrefixes, Ipv6Addr)> {
    let (v6, _) = split(&cfg.edge_address)?;
    let (v4, v4_len) = split(&cfg.edge_address_v4)?;
    let (IpAddr::V6(v6), IpAddr::V4(v4)) = (v6, v4) else {
        return Err(anyhow!(
            "the vm's answer has addresses of the wrong family: {} and {}",
            cfg.edge_address,
            cfg.edge_address_v4
        ));
    };
    let vm_v6: Ipv6Addr = cfg
        .vm_address
        .parse()
        .with_context(|| format!("the vm's overlay address {:?}", cfg.vm_address))?;
    let s = v6.segments();
    let mask = u32::MAX.checked_shl(32 - u32::from(v4_len)).unwrap_or(0);
    let prefixes = OverlayPrefixes {
        v6: Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0),
        v4: Overlay4 {
            network: Ipv4Addr::from(u32::from(v4) & mask),
            len: v4_len,
        },
    };
    Ok((PeerAddresses { v6, v4 }, prefixes, vm_v6))
}

fn split(s: &str) -> Result<(IpAddr, u8)> {
    let (a, len) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("{s:?} is not address/length"))?;
    Ok((
        a.parse().with_context(|| format!("{s:?}"))?,
        len.parse().with_context(|| format!("{s:?}"))?,
    ))
}

async fn resolve(endpoint: &str) -> Result<SocketAddr> {
    let mut addrs = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host(endpoint.to_owned()),
    )
    .await
    .map_err(|_| anyhow!("resolving {endpoint} timed out"))?
    .with_context(|| format!("cannot resolve the vm's WireGuard endpoint {endpoint}"))?;
    addrs
        .find(|a| a.is_ipv4())
        .ok_or_else(|| anyhow!("{endpoint} has no IPv4 address"))
}

async fn apply(
    ctx: &Context,
    key: &WgKey,
    cfg: &WgPeerConfig,
    up: &mut Option<Up>,
    stop: &Shutdown,
) -> Result<()> {
    let vm_key = PublicKey::from_slice(&cfg.vm_public_key)
        .map_err(|_| anyhow!("the vm's WireGuard key is not 32 bytes"))?;
    let (addresses, prefixes, vm_v6) = addressing(cfg)?;
    let vm_udp = resolve(&cfg.vm_endpoint).await?;
    let vm_peer = PeerSpec {
        public_key: vm_key,
        endpoint: Some(vm_udp),
        allowed_ips: cfg.allowed_ips.clone(),
        keepalive: Some(cfg.keepalive_secs.max(1)),
    };
    if up.is_none() {
        let device = OverlayDevice::start(DeviceSpec {
            interface: ctx.config.interface.clone(),
            secret: key.secret.clone(),
            listen_port: 0,
            addresses,
            prefixes,
            mtu: DEFAULT_MTU,
            answer_probes: false,
            forward: false,
        })
        .await?;
        let device = Arc::new(device);
        device.set_peer(&vm_peer).await?;
        let mut lan = Vec::new();
        if ctx.config.api_port > 0
            && let Some((api, allow)) = &ctx.lan
        {
            for ip in [IpAddr::V6(addresses.v6), IpAddr::V4(addresses.v4)] {
                let listen = SocketAddr::new(ip, ctx.config.api_port).to_string();
                let s = stop.child();
                match crate::lan::start(api.clone(), &listen, allow, s.clone()).await {
                    Ok((addr, task)) => {
                        tracing::info!(%addr, "local API listening on the overlay");
                        lan.push((s, task));
                    }
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "no local API on the overlay")
                    }
                }
            }
        }
        tracing::info!(
            interface = device.interface(),
            address = %addresses.v6,
            vm = %cfg.vm_endpoint,
            generation = key.generation,
            "WireGuard overlay up"
        );
        *up = Some(Up {
            device,
            generation: key.generation,
            vm_key,
            vm_endpoint: cfg.vm_endpoint.clone(),
            path: None,
            lan,
        });
    }
    let u = up.as_mut().expect("set above");
    if u.generation != key.generation {
        u.device.set_secret(&key.secret).await?;
        u.generation = key.generation;
        tracing::info!(generation = key.generation, "WireGuard key swapped");
    }
    let moved = u.vm_key != vm_key || u.vm_endpoint != cfg.vm_endpoint;
    if moved {
        if u.vm_key != vm_key {
            let _ = u.device.remove_peer(&u.vm_key).await;
        }
        u.device.set_peer(&vm_peer).await?;
        u.vm_key = vm_key;
        u.vm_endpoint = cfg.vm_endpoint.clone();
        if let Some((s, t)) = u.path.take() {
            s.trigger();
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
    if u.path.is_none() {
        let s = stop.child();
        let task = path_task::PathTask {
            device: u.device.clone(),
            vm_key,
            vm_udp,
            vm_overlay: vm_v6,
            handle: ctx.handle.clone(),
            vm: ctx.vm,
            clock: ctx.clock.clone(),
            rule: PathRule {
                udp_timeout: Duration::from_secs(u64::from(ctx.config.udp_timeout_secs)),
                ..PathRule::default()
            },
            path: ctx.path.clone(),
        };
        u.path = Some((s.clone(), tokio::spawn(task.run(s))));
    }
    // Any packet makes the vm learn this edge's current endpoint and key at once.
    path_task::poke(vm_v6);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_gives_addresses_and_prefixes() {
        let cfg = WgPeerConfig {
            vm_public_key: vec![1; 32],
            vm_endpoint: "vm.example:51820".into(),
            edge_address: "fd12:3456:789a::3/64".into(),
            vm_address: "fd12:3456:789a::1".into(),
            edge_address_v4: "10.77.0.3/16".into(),
            vm_address_v4: "10.77.0.1".into(),
            allowed_ips: vec![],
            keepalive_secs: 25,
            generation: 1,
            rotate: false,
            recheck_secs: 60,
        };
        let (a, p, vm) = addressing(&cfg).unwrap();
        assert_eq!(a.v6, "fd12:3456:789a::3".parse::<Ipv6Addr>().unwrap());
        assert_eq!(a.v4, Ipv4Addr::new(10, 77, 0, 3));
        assert_eq!(p.v4_cidr(), "10.77.0.0/16");
        assert_eq!(p.v6_cidr(), "fd12:3456:789a::/64");
        assert_eq!(vm, "fd12:3456:789a::1".parse::<Ipv6Addr>().unwrap());
        let bad = WgPeerConfig {
            edge_address_v4: "fd00::1/64".into(),
            ..cfg
        };
        assert!(addressing(&bad).is_err());
    }
}
