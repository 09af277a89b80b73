//! One scan of the LAN: the ONVIF probe and an inspection of each camera that answers
//! (with the credentials of a camera configured at its address, if any), the RTSP probe of
//! the hosts of the edge's own subnets, and the V4L2 devices; merged into one report. Each
//! part is bounded in time and the whole by `[discovery] timeout_secs`; a part that fails
//! is named in the report's errors and the others go on.

use std::net::Ipv4Addr;
use std::time::Duration;

use protocols::lan::wsd::Endpoint;
use protocols::messages::discovery::{DiscoveryReport, Finding, FindingKind};

use super::subnets::IfaceNet;
use super::{merge, onvif, rtsp, rtsp_finding, subnets, v4l2, wsd};
use crate::config::{DiscoveryConfig, EdgeConfig};

/// Credentials of an ONVIF camera configured on this edge, tried on the camera at its host.
#[derive(Clone)]
pub struct Known {
    /// The host of its xaddr.
    pub host: String,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Known")
            .field("host", &self.host)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The ONVIF cameras configured in `config`, by host.
pub fn known(config: &EdgeConfig) -> Vec<Known> {
    config
        .cameras
        .iter()
        .filter_map(|c| {
            let o = c.onvif.as_ref()?;
            Some(Known {
                host: protocols::credential::host(&o.xaddr)?,
                username: o.username.clone(),
                password: o.password.clone(),
            })
        })
        .collect()
}

/// The edge's IPv4 interfaces (not loopback).
pub fn interfaces() -> std::io::Result<Vec<IfaceNet>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) if !v4.ip.is_loopback() => Some(IfaceNet {
                addr: v4.ip,
                prefix: u32::from(v4.netmask).count_ones() as u8,
            }),
            _ => None,
        })
        .collect())
}

/// The xaddr of a probe match to use: one at the address it answered from, else the first
/// `http://` one.
pub fn pick_xaddr(endpoint: &Endpoint, from: Ipv4Addr) -> Option<String> {
    let http = |x: &&String| x.starts_with("http://");
    endpoint
        .xaddrs
        .iter()
        .filter(http)
        .find(|x| protocols::credential::host(x).as_deref() == Some(from.to_string().as_str()))
        .or_else(|| endpoint.xaddrs.iter().find(http))
        .cloned()
}

/// Inspects one ONVIF camera (blocking: call it from the blocking pool).
pub fn inspect_onvif(
    endpoint: &Endpoint,
    from: Ipv4Addr,
    known: &[Known],
    now_ms: u64,
) -> Option<Finding> {
    let xaddr = pick_xaddr(endpoint, from)?;
    let host = protocols::credential::host(&xaddr).unwrap_or_default();
    let login = known.iter().find(|k| k.host == host).map(|k| onvif::Login {
        username: &k.username,
        password: &k.password,
    });
    let inspection = onvif::inspect(&xaddr, login, now_ms).map_err(|e| e.to_string());
    Some(super::onvif_finding(
        endpoint,
        from,
        &xaddr,
        inspection.as_ref().map_err(Clone::clone),
        now_ms,
    ))
}

/// Runs one scan as `cfg` says; `now_ms` reads the clock.
pub async fn scan(
    cfg: DiscoveryConfig,
    known: Vec<Known>,
    now_ms: impl Fn() -> u64 + Send,
) -> DiscoveryReport {
    let started_at_ms = now_ms();
    let mut errors = Vec::new();
    let mut scanned = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let within = Duration::from_secs(cfg.timeout_secs.max(5));
    let ifaces = match interfaces() {
        Ok(i) => i,
        Err(e) => {
            errors.push(format!("cannot list the network interfaces: {e}"));
            Vec::new()
        }
    };
    let (targets, refused) = subnets::targets(&ifaces, &cfg.subnets);
    errors.extend(refused);
    let work = async {
        if cfg.onvif {
            let lan: Vec<Ipv4Addr> = ifaces
                .iter()
                .filter(|n| subnets::eligible(n))
                .map(|n| n.addr)
                .collect();
            scanned.push(format!(
                "onvif ({})",
                lan.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let wait = Duration::from_secs(cfg.onvif_wait_secs.clamp(1, 30));
            let known = known.clone();
            let now = now_ms();
            match tokio::task::spawn_blocking(move || {
                let (found, errs) = wsd::probe(&lan, wait);
                let f: Vec<Finding> = found
                    .iter()
                    .filter_map(|(e, from)| inspect_onvif(e, *from, &known, now))
                    .collect();
                (f, errs)
            })
            .await
            {
                Ok((f, errs)) => {
                    findings.extend(f);
                    errors.extend(errs);
                }
                Err(e) => errors.push(format!("the ONVIF probe failed: {e}")),
            }
        }
        if cfg.rtsp && !targets.is_empty() {
            let mut hosts = Vec::new();
            for t in &targets {
                scanned.push(format!("rtsp {}", t.network()));
                hosts.extend(subnets::hosts(t, cfg.max_hosts));
            }
            let now = now_ms();
            for h in
                rtsp::probe_hosts(hosts, &cfg.rtsp_ports, &cfg.rtsp_paths, cfg.probes_per_sec).await
            {
                findings.push(rtsp_finding(&h, now));
            }
        }
        if cfg.v4l2 {
            scanned.push("v4l2".into());
            let now = now_ms();
            match tokio::task::spawn_blocking(v4l2::devices).await {
                Ok(Ok(devices)) => findings.extend(devices.into_iter().map(|d| Finding {
                    kind: FindingKind::V4l2,
                    address: d.path,
                    rtsp_ports: Vec::new(),
                    xaddr: None,
                    endpoint: None,
                    manufacturer: None,
                    model: Some(d.name.clone()),
                    name: Some(d.name),
                    firmware: None,
                    needs_credentials: false,
                    credentials_accepted: None,
                    profiles: d.profiles,
                    seen_at_ms: now,
                    note: None,
                })),
                Ok(Err(e)) => errors.push(format!("cannot list the video devices: {e}")),
                Err(e) => errors.push(format!("listing the video devices failed: {e}")),
            }
        }
    };
    if tokio::time::timeout(within, work).await.is_err() {
        errors.push(format!(
            "the scan took longer than {} s ([discovery] timeout_secs); what it found so far is kept",
            within.as_secs()
        ));
    }
    DiscoveryReport {
        enabled: true,
        started_at_ms,
        finished_at_ms: now_ms(),
        scanned,
        findings: merge(findings),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xaddr_at_the_answering_address_wins() {
        let e = Endpoint {
            xaddrs: vec![
                "https://10.0.0.3/onvif/device_service".into(),
                "http://192.168.9.9/onvif/device_service".into(),
                "http://10.0.0.3:8080/onvif/device_service".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            pick_xaddr(&e, [10, 0, 0, 3].into()).as_deref(),
            Some("http://10.0.0.3:8080/onvif/device_service")
        );
        assert_eq!(
            pick_xaddr(&e, [10, 0, 0, 7].into()).as_deref(),
            Some("http://192.168.9.9/onvif/device_service")
        );
        assert_eq!(pick_xaddr(&Endpoint::default(), [10, 0, 0, 3].into()), None);
    }

    #[test]
    fn the_credentials_of_configured_onvif_cameras() {
        let mut c = EdgeConfig::default();
        c.cameras.push(crate::config::CameraSettings {
            id: "porch".into(),
            onvif: Some(crate::config::OnvifSettings {
                xaddr: "http://10.0.0.3:8080/onvif/device_service".into(),
                username: "admin".into(),
                password: "pw".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        c.cameras.push(crate::config::CameraSettings {
            id: "yard".into(),
            url: "rtsp://10.0.0.4/x".into(),
            ..Default::default()
        });
        let k = known(&c);
        assert_eq!(k.len(), 1);
        assert_eq!(
            (k[0].host.as_str(), k[0].username.as_str()),
            ("10.0.0.3", "admin")
        );
        assert!(!format!("{k:?}").contains("pw"));
    }
}
