//! Finding cameras on the edge's LAN, and asking ONVIF cameras where they stream.
//!
//! - [`scan`]: one scan (WS-Discovery probe, ONVIF inspection, RTSP probe of the LAN's
//!   hosts, V4L2 devices) into a [`DiscoveryReport`].
//! - [`onvif`], [`http`]: the ONVIF client (also what a camera thread uses to resolve an
//!   ONVIF camera's stream URLs each time it connects).
//! - [`wsd`], [`rtsp`], [`v4l2`]: one kind of looking each.
//! - [`subnets`]: which hosts may be probed (pure).
//!
//! This module keeps the pure decisions: how findings of the same host merge ([`merge`])
//! and which stream is the main one and which the substream ([`assign_roles`]).

pub mod http;
pub mod onvif;
pub mod rtsp;
pub mod scan;
pub mod subnets;
pub mod v4l2;
pub mod wsd;

use protocols::lan::onvif::MediaProfile;
use protocols::lan::wsd::Endpoint;
use protocols::messages::discovery::{Finding, FindingKind, StreamProfile, StreamRole};

pub use protocols::messages::discovery::DiscoveryReport;

/// Marks the largest stream (by area, then frame rate) main and the next smaller size sub,
/// and orders them so.
pub fn assign_roles(profiles: &mut [StreamProfile]) {
    let area =
        |p: &StreamProfile| u64::from(p.width.unwrap_or(0)) * u64::from(p.height.unwrap_or(0));
    profiles.sort_by(|a, b| {
        area(b)
            .cmp(&area(a))
            .then(b.fps_milli.unwrap_or(0).cmp(&a.fps_milli.unwrap_or(0)))
    });
    let main_area = profiles.first().map(area);
    let mut sub_taken = false;
    for (i, p) in profiles.iter_mut().enumerate() {
        p.role = if i == 0 {
            StreamRole::Main
        } else if !sub_taken && Some(area(p)) < main_area && area(p) > 0 {
            sub_taken = true;
            StreamRole::Sub
        } else {
            StreamRole::Other
        };
    }
    // Main, then sub, then the rest in size order.
    profiles.sort_by_key(|p| match p.role {
        StreamRole::Main => 0,
        StreamRole::Sub => 1,
        StreamRole::Other => 2,
    });
}

/// An ONVIF camera's finding, from its probe match (`endpoint`, answering from `ip`) and
/// what inspecting it gave (`inspection`, or why it failed).
pub fn onvif_finding(
    endpoint: &Endpoint,
    ip: std::net::Ipv4Addr,
    xaddr: &str,
    inspection: Result<&onvif::Inspection, String>,
    now_ms: u64,
) -> Finding {
    let (info, profiles, needs, accepted, note) = match inspection {
        Ok(i) => (
            i.info.clone(),
            i.profiles.as_slice(),
            i.needs_credentials,
            i.credentials_accepted,
            i.note.clone(),
        ),
        Err(e) => (None, &[][..], false, None, Some(e)),
    };
    let mut streams: Vec<StreamProfile> = profiles
        .iter()
        .map(|(p, uri): &(MediaProfile, Option<String>)| StreamProfile {
            token: p.token.clone(),
            name: p.name.clone(),
            role: StreamRole::Other,
            url: uri
                .as_deref()
                .map(|u| protocols::credential::split_userinfo(u).url),
            codec: p.encoding.clone(),
            width: p.width,
            height: p.height,
            fps_milli: p.fps.map(|f| f.saturating_mul(1000)),
        })
        .collect();
    assign_roles(&mut streams);
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Finding {
        kind: FindingKind::Onvif,
        address: ip.to_string(),
        rtsp_ports: Vec::new(),
        xaddr: Some(xaddr.to_owned()),
        endpoint: nonempty(&endpoint.address),
        manufacturer: info
            .as_ref()
            .and_then(|i| nonempty(&i.manufacturer))
            .or_else(|| endpoint.scope("mfr")),
        model: info
            .as_ref()
            .and_then(|i| nonempty(&i.model))
            .or_else(|| endpoint.scope("hardware")),
        name: endpoint.scope("name"),
        firmware: info.as_ref().and_then(|i| nonempty(&i.firmware)),
        needs_credentials: needs,
        credentials_accepted: accepted,
        profiles: streams,
        seen_at_ms: now_ms,
        note,
    }
}

/// An RTSP host's finding.
pub fn rtsp_finding(h: &rtsp::RtspHost, now_ms: u64) -> Finding {
    let profiles = match (&h.path, &h.video) {
        (Some(path), video) => {
            let size = video.as_ref().and_then(|v| v.size);
            vec![StreamProfile {
                token: path.clone(),
                name: path.clone(),
                role: StreamRole::Main,
                url: Some(format!("rtsp://{}:{}{path}", h.ip, h.port)),
                codec: video.as_ref().and_then(|v| v.encoding.clone()),
                width: size.map(|s| s.0),
                height: size.map(|s| s.1),
                fps_milli: video
                    .as_ref()
                    .and_then(|v| v.fps)
                    .map(|f| (f * 1000.0) as u32),
            }]
        }
        (None, _) => Vec::new(),
    };
    Finding {
        kind: FindingKind::Rtsp,
        address: h.ip.to_string(),
        rtsp_ports: vec![h.port],
        xaddr: None,
        endpoint: None,
        manufacturer: None,
        model: None,
        name: None,
        firmware: None,
        needs_credentials: h.needs_credentials,
        credentials_accepted: None,
        profiles,
        seen_at_ms: now_ms,
        note: None,
    }
}

/// One finding per address: an ONVIF camera's takes the RTSP ports (and, when it could not
/// list its profiles, the RTSP paths) found at the same address; RTSP hosts merge their
/// ports; V4L2 devices stay apart. Sorted by kind, then address.
pub fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let (onvif, rest): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|f| f.kind == FindingKind::Onvif);
    for f in onvif {
        if !out
            .iter()
            .any(|o| o.kind == FindingKind::Onvif && o.address == f.address)
        {
            out.push(f);
        }
    }
    for f in rest {
        let same = out.iter_mut().find(|o| {
            o.address == f.address && f.kind == FindingKind::Rtsp && o.kind != FindingKind::V4l2
        });
        match same {
            Some(o) => {
                for p in &f.rtsp_ports {
                    if !o.rtsp_ports.contains(p) {
                        o.rtsp_ports.push(*p);
                    }
                }
                o.rtsp_ports.sort_unstable();
                o.needs_credentials |= f.needs_credentials;
                if o.profiles.is_empty() {
                    o.profiles = f.profiles;
                } else if o.kind == FindingKind::Rtsp {
                    for p in f.profiles {
                        if !o.profiles.iter().any(|q| q.url == p.url) {
                            o.profiles.push(p);
                        }
                    }
                }
            }
            None => out.push(f),
        }
    }
    out.sort_by(|a, b| (a.kind, &a.address).cmp(&(b.kind, &b.address)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(w: u32, h: u32, fps: u32) -> StreamProfile {
        StreamProfile {
            token: format!("{w}x{h}@{fps}"),
            name: String::new(),
            role: StreamRole::Other,
            url: None,
            codec: None,
            width: Some(w),
            height: Some(h),
            fps_milli: Some(fps * 1000),
        }
    }

    #[test]
    fn the_largest_is_main_and_the_next_size_sub() {
        let mut p = vec![
            sp(640, 360, 15),
            sp(1920, 1080, 5),
            sp(1920, 1080, 25),
            sp(320, 180, 15),
        ];
        assign_roles(&mut p);
        let got: Vec<(&str, StreamRole)> = p.iter().map(|x| (x.token.as_str(), x.role)).collect();
        assert_eq!(
            got,
            [
                ("1920x1080@25", StreamRole::Main),
                ("640x360@15", StreamRole::Sub),
                ("1920x1080@5", StreamRole::Other),
                ("320x180@15", StreamRole::Other),
            ]
        );
        let mut one = vec![sp(1280, 720, 15)];
        assign_roles(&mut one);
        assert_eq!(one[0].role, StreamRole::Main);
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            address: "urn:uuid:cam".into(),
            types: vec!["NetworkVideoTransmitter".into()],
            scopes: vec![
                "onvif://www.onvif.org/hardware/Door%202".into(),
                "onvif://www.onvif.org/mfr/Acme".into(),
                "onvif://www.onvif.org/name/Porch".into(),
            ],
            xaddrs: vec!["http://10.0.0.3/onvif/device_service".into()],
        }
    }

    #[test]
    fn onvif_without_credentials_says_so_and_names_itself_from_its_scopes() {
        let i = onvif::Inspection {
            needs_credentials: true,
            ..Default::default()
        };
        let f = onvif_finding(
            &endpoint(),
            [10, 0, 0, 3].into(),
            "http://10.0.0.3/onvif/device_service",
            Ok(&i),
            7,
        );
        assert_eq!(f.kind, FindingKind::Onvif);
        assert!(f.needs_credentials);
        assert_eq!(f.model.as_deref(), Some("Door 2"));
        assert_eq!(f.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(f.name.as_deref(), Some("Porch"));
        assert!(f.profiles.is_empty());
        let with = onvif::Inspection {
            info: Some(protocols::lan::onvif::DeviceInformation {
                manufacturer: "Acme Corp".into(),
                model: "D2".into(),
                firmware: "1.0".into(),
                serial: "s".into(),
            }),
            profiles: vec![
                (
                    MediaProfile {
                        token: "sub".into(),
                        width: Some(640),
                        height: Some(360),
                        fps: Some(15),
                        encoding: Some("H264".into()),
                        ..Default::default()
                    },
                    Some("rtsp://admin:x@10.0.0.3:8554/sub".into()),
                ),
                (
                    MediaProfile {
                        token: "main".into(),
                        width: Some(1280),
                        height: Some(720),
                        fps: Some(15),
                        encoding: Some("H264".into()),
                        ..Default::default()
                    },
                    Some("rtsp://10.0.0.3:8554/cam".into()),
                ),
            ],
            needs_credentials: false,
            credentials_accepted: Some(true),
            note: None,
        };
        let f = onvif_finding(&endpoint(), [10, 0, 0, 3].into(), "http://x", Ok(&with), 7);
        assert_eq!(f.manufacturer.as_deref(), Some("Acme Corp"));
        assert_eq!(f.profiles[0].token, "main");
        assert_eq!(f.profiles[1].role, StreamRole::Sub);
        assert_eq!(
            f.profiles[1].url.as_deref(),
            Some("rtsp://10.0.0.3:8554/sub"),
            "no user information"
        );
        assert_eq!(f.profiles[1].fps_milli, Some(15_000));
    }

    #[test]
    fn findings_of_one_host_merge() {
        let rtsp_host = |port, needs| rtsp::RtspHost {
            ip: [10, 0, 0, 3].into(),
            port,
            path: Some("/cam".into()),
            video: None,
            needs_credentials: needs,
        };
        let i = onvif::Inspection::default();
        let onvif = onvif_finding(&endpoint(), [10, 0, 0, 3].into(), "http://x", Ok(&i), 1);
        let other = rtsp_finding(
            &rtsp::RtspHost {
                ip: [10, 0, 0, 9].into(),
                port: 554,
                path: None,
                video: None,
                needs_credentials: false,
            },
            1,
        );
        let merged = merge(vec![
            rtsp_finding(&rtsp_host(8554, true), 1),
            other.clone(),
            onvif,
            rtsp_finding(&rtsp_host(554, false), 1),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].kind, FindingKind::Onvif);
        assert_eq!(merged[0].rtsp_ports, [554, 8554]);
        assert!(merged[0].needs_credentials);
        assert_eq!(
            merged[0].profiles.len(),
            1,
            "the RTSP path, as the camera listed none"
        );
        assert_eq!(merged[1], other);
    }
}
