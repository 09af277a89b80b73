//! The WireGuard overlay (`docs/overlay.md`) with the real binaries in a lab, driven as a user
//! would: the vm's API, `curl` at overlay addresses, the owner's `guardian wg device`, and a
//! stock WireGuard client (Debian's wg-quick with wireguard-go). Every wait is on state (an
//! API's answer, `wg show`), never on a log line.
//!
//! - an edge behind each NAT profile gets a tunnel (udp-blocked over the stream fallback) and
//!   the vm reads its local status over it, through its proxy and with curl;
//! - UDP blocked at the edge's router moves the path to the stream, unblocked back to UDP,
//!   with requests flowing through the proxy and none failing;
//! - a key rotation asked through the API while requests flow drops none;
//! - a device config made by `guardian wg device add` and brought up with wg-quick and
//!   wireguard-go behind a symmetric NAT reaches an edge through the vm; another tenant's
//!   device gets no answer; `guardian wg device remove` cuts the device off at once.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use guardian_netsim::NatProfile;
use guardian_netsim::guardian::wait_for;
use guardian_netsim::overlay::{
    TUNNEL_TIMEOUT, Traffic, WgQuick, check_health, conf_value, conf_with, curl_edge, device_add,
    guardian_wg, lab_with_overlay_vm, logs, overlay_edge, overlay_vm, proxy_health, wait_path,
    wait_tunnel, wg_show,
};

const CURL_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn an_edge_behind_each_nat_gets_a_tunnel_and_the_vm_reads_its_local_status() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t0 = Instant::now();
    let (lab, vm) = lab_with_overlay_vm(&[]).unwrap_or_else(|e| panic!("{e}"));
    let mut edges = Vec::new();
    for p in NatProfile::ALL {
        let name = format!("edge-{}", p.name());
        let edge = overlay_edge(&lab, &vm, &name, p, None).unwrap_or_else(|e| panic!("{e}"));
        edges.push((p, edge));
    }
    let vm_iface = vm.wg_interface.clone().unwrap();
    let mut tunnels = Vec::new();
    for (p, edge) in &edges {
        let want = if p.udp() { "udp" } else { "stream" };
        let t = wait_tunnel(&lab, &vm, edge, Some(want), TUNNEL_TIMEOUT)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        eprintln!(
            "{:<16} tunnel over {:<6} at {:>5.1} s: {} {} generation {:?}",
            p.name(),
            t.path,
            t0.elapsed().as_secs_f64(),
            t.overlay_ip,
            t.overlay_ipv4,
            t.generation
        );
        tunnels.push(t);
    }
    // One overlay: distinct addresses in the same /64.
    for (i, a) in tunnels.iter().enumerate() {
        assert_eq!(a.vm_ip(), tunnels[0].vm_ip(), "{a:?}");
        for b in &tunnels[i + 1..] {
            assert_ne!(a.overlay_ip, b.overlay_ip);
            assert_ne!(a.overlay_ipv4, b.overlay_ipv4);
        }
    }
    // `wg show` reads both ends' userspace devices: the vm has each edge's key as a peer.
    let vm_peers = wg_show(&vm.host, &vm_iface, "peers").unwrap();
    for ((p, edge), t) in edges.iter().zip(&tunnels) {
        let key = wg_show(
            &edge.host,
            edge.wg_interface.as_ref().unwrap(),
            "public-key",
        )
        .unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(
            vm_peers.lines().any(|l| l.trim() == key),
            "{p}: the edge's key {key} is not among the vm's peers:\n{vm_peers}"
        );
        // The vm fetches the edge's local status over the tunnel, through its proxy.
        let mut last = String::new();
        wait_for(
            &format!("{p}: the edge's health through the vm's proxy"),
            Duration::from_secs(30),
            || match proxy_health(&lab, &vm, edge, &t.peer_id) {
                Ok((status, body)) => match check_health(status, &body, &t.peer_id) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e;
                        false
                    }
                },
                Err(e) => {
                    last = e.to_string();
                    false
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}: last answer {last}\n{}", logs(&vm, &[edge])));
        // And straight at the edge's overlay addresses, from the vm's namespace, with the
        // edge's own sign-in.
        let token = edge.local_token.as_deref().unwrap();
        for addr in [IpAddr::V6(t.overlay_ip), IpAddr::V4(t.overlay_ipv4)] {
            let (status, body) = curl_edge(&vm.host, addr, token, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{p}: curl {addr}: {e}\n{}", logs(&vm, &[edge])));
            check_health(status, &body, &t.peer_id)
                .unwrap_or_else(|e| panic!("{p}: curl {addr}: {e}"));
        }
        // Without the edge's token, its API refuses.
        let (status, _) =
            curl_edge(&vm.host, IpAddr::V6(t.overlay_ip), "wrong", CURL_TIMEOUT).unwrap();
        assert_eq!(status, 401, "{p}: a wrong bearer");
    }
    eprintln!(
        "overlay behind every NAT: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn udp_blocked_then_unblocked_moves_the_path_to_stream_and_back_without_a_failed_request() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let (lab, vm) = lab_with_overlay_vm(&[]).unwrap_or_else(|e| panic!("{e}"));
    let edge = overlay_edge(&lab, &vm, "edge", NatProfile::PortRestrictedCone, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = wait_tunnel(&lab, &vm, &edge, Some("udp"), TUNNEL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let traffic = Traffic::start(&vm, &edge, &t.peer_id).unwrap();
    let why = |e: guardian_netsim::Error, traffic: &Traffic| {
        format!(
            "{e} ({} requests answered, {} failed)\n{}",
            traffic.ok(),
            traffic.failed(),
            logs(&vm, &[&edge])
        )
    };
    traffic
        .wait_more(5, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{}", why(e, &traffic)));

    lab.block_udp(&edge.host).unwrap();
    let to_stream = wait_path(&lab, &vm, &edge, "stream", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}", why(e, &traffic)));
    eprintln!("UDP blocked: stream after {to_stream:.1?}");
    traffic
        .wait_more(10, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}", why(e, &traffic)));

    lab.unblock_udp(&edge.host).unwrap();
    let to_udp = wait_path(&lab, &vm, &edge, "udp", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}", why(e, &traffic)));
    eprintln!("UDP unblocked: udp after {to_udp:.1?}");
    traffic
        .wait_more(10, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{}", why(e, &traffic)));

    let report = traffic.finish();
    eprintln!(
        "{} requests answered through the proxy, {} failed, the slowest in {:?}",
        report.ok,
        report.failed.len(),
        report.slowest
    );
    assert!(
        report.failed.is_empty(),
        "failed requests (seconds from the start, what): {:?}",
        report.failed
    );
    assert!(report.ok >= 25, "{report:?}");
    assert!(
        to_stream <= Duration::from_secs(30),
        "the stream took {to_stream:?} (about 10 s without a probe answer, then a handshake)"
    );
    assert!(
        to_udp <= Duration::from_secs(30),
        "back to UDP took {to_udp:?} (the edge probes every second)"
    );
}

#[test]
fn a_key_rotation_asked_through_the_api_under_traffic_drops_no_request() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    // The rotation reaches the edge with its next offer: every 5 s here (default 60 s).
    let (lab, vm) = lab_with_overlay_vm(&[("recheck_secs", toml::Value::Integer(5))])
        .unwrap_or_else(|e| panic!("{e}"));
    let edge = overlay_edge(&lab, &vm, "edge", NatProfile::FullCone, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = wait_tunnel(&lab, &vm, &edge, Some("udp"), TUNNEL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let generation = t
        .generation
        .unwrap_or_else(|| panic!("no overlay_generation in GET /api/v1/devices: {t:?}"));
    let edge_iface = edge.wg_interface.clone().unwrap();
    let vm_iface = vm.wg_interface.clone().unwrap();
    let old_key = wg_show(&edge.host, &edge_iface, "public-key").unwrap();

    let traffic = Traffic::start(&vm, &edge, &t.peer_id).unwrap();
    traffic
        .wait_more(5, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm, &[&edge])));
    let (status, body) = vm
        .send(
            &lab,
            "POST",
            &format!("/api/v1/devices/{}/overlay/rotate", t.peer_id),
            None,
        )
        .unwrap();
    assert!((200..300).contains(&status), "rotate: {status} {body}");
    let started = Instant::now();
    let mut now = generation;
    wait_for(
        "a new key generation at the vm",
        Duration::from_secs(90),
        || {
            if let Ok(Some(d)) = guardian_netsim::overlay::device(&lab, &vm, "edge") {
                now = d["overlay_generation"].as_u64().unwrap_or(now);
            }
            now > generation
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm, &[&edge])));
    eprintln!(
        "generation {generation} -> {now} after {:.1?}",
        started.elapsed()
    );
    // The edge swaps its key once the vm accepted it: the vm then holds the new one only.
    let mut new_key = old_key.clone();
    wait_for(
        "the edge's new key on both devices",
        Duration::from_secs(30),
        || {
            new_key = wg_show(&edge.host, &edge_iface, "public-key").unwrap_or_default();
            let peers = wg_show(&vm.host, &vm_iface, "peers").unwrap_or_default();
            new_key != old_key
                && peers.lines().any(|l| l.trim() == new_key)
                && !peers.lines().any(|l| l.trim() == old_key)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm, &[&edge])));
    traffic
        .wait_more(10, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm, &[&edge])));
    let report = traffic.finish();
    eprintln!(
        "{} requests answered through the rotation, {} failed, the slowest in {:?}",
        report.ok,
        report.failed.len(),
        report.slowest
    );
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    assert!(report.ok >= 15, "{report:?}");
}

#[test]
fn a_stock_wireguard_client_reaches_an_edge_through_the_vm_and_removal_cuts_it_off() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let (lab, vm) = lab_with_overlay_vm(&[]).unwrap_or_else(|e| panic!("{e}"));
    let edge = overlay_edge(&lab, &vm, "edge", NatProfile::PortRestrictedCone, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = wait_tunnel(&lab, &vm, &edge, Some("udp"), TUNNEL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let token = edge.local_token.clone().unwrap();

    // The owner's phone behind a symmetric NAT: a key pair made there, the config from the
    // CLI, brought up by wg-quick with wireguard-go.
    let phone = lab.host_behind("phone", NatProfile::Symmetric).unwrap();
    let conf = device_add(&lab, &phone, &vm, "phone").unwrap_or_else(|e| panic!("{e}"));
    let phone_conf = std::fs::read_to_string(&conf).unwrap();
    eprintln!(
        "the phone's config (private key elided):\n{}",
        conf_with(&phone_conf, "PrivateKey", "...")
    );
    let listed = guardian_wg(&phone, &vm, &["list"]).unwrap();
    assert!(
        listed.contains("phone"),
        "guardian wg device list:\n{listed}"
    );
    let up = WgQuick::up(&phone, &conf).unwrap_or_else(|e| panic!("{e}"));
    let mut last = String::new();
    for addr in [IpAddr::V6(t.overlay_ip), IpAddr::V4(t.overlay_ipv4)] {
        wait_for(
            &format!("the edge's API at {addr} from the phone"),
            Duration::from_secs(30),
            || match curl_edge(&phone, addr, &token, CURL_TIMEOUT) {
                Ok((status, body)) => {
                    let r = check_health(status, &body, &t.peer_id);
                    if let Err(e) = &r {
                        last = e.clone();
                    }
                    r.is_ok()
                }
                Err(e) => {
                    last = e.to_string();
                    false
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}\n{}", logs(&vm, &[&edge])));
    }
    let handshake = up.latest_handshake().unwrap();
    assert!(handshake.is_some(), "wg show {}: no handshake", up.iface);
    eprintln!(
        "wg show {}:\n{}",
        up.iface,
        guardian_netsim::cmd::run_in(&phone.ns, "wg", &["show", &up.iface]).unwrap_or_default()
    );

    // Another tenant's device: registered at a second vm, where it works...
    let vm2 = overlay_vm(&lab, "vm2", &[]).unwrap_or_else(|e| panic!("{e}"));
    let stranger = lab.host_behind("stranger", NatProfile::FullCone).unwrap();
    let conf2 = device_add(&lab, &stranger, &vm2, "stranger").unwrap_or_else(|e| panic!("{e}"));
    let text2 = std::fs::read_to_string(&conf2).unwrap();
    let own = WgQuick::up(&stranger, &conf2).unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the other tenant's device's handshake with its own vm",
        Duration::from_secs(20),
        || own.latest_handshake().is_ok_and(|h| h.is_some()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", vm2.log_tail(30)));
    own.down().unwrap();
    // ...pointed at the first vm (its key, endpoint and prefixes): no handshake, no answer.
    // (IPv6 only: both tenants' IPv4 ranges are the default 10.77.0.0/16.)
    let mut text = text2.clone();
    for key in ["PublicKey", "Endpoint", "AllowedIPs"] {
        text = conf_with(&text, key, conf_value(&phone_conf, key).unwrap());
    }
    let conf3 = lab.path(&format!("{}.conf", lab.wg_ifname()));
    std::fs::write(&conf3, text).unwrap();
    let foreign = WgQuick::up(&stranger, &conf3).unwrap_or_else(|e| panic!("{e}"));
    let r = curl_edge(&stranger, IpAddr::V6(t.overlay_ip), &token, CURL_TIMEOUT);
    assert!(r.is_err(), "another tenant's device got an answer: {r:?}");
    assert_eq!(
        foreign.latest_handshake().unwrap(),
        None,
        "the first vm shook hands with another tenant's key"
    );
    drop(foreign);

    // Removal cuts the phone off at once.
    guardian_wg(&phone, &vm, &["remove", "--name", "phone"]).unwrap_or_else(|e| panic!("{e}"));
    let r = curl_edge(&phone, IpAddr::V6(t.overlay_ip), &token, CURL_TIMEOUT);
    assert!(r.is_err(), "a removed device got an answer: {r:?}");
    let listed = guardian_wg(&phone, &vm, &["list"]).unwrap();
    assert!(
        !listed.contains("phone"),
        "guardian wg device list after removal:\n{listed}"
    );
}
