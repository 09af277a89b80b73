//! The harness checks itself before scenarios trust it: each NAT profile maps and filters as
//! named, impairments delay, drop and limit as asked, a cut link passes nothing, and labs
//! leave nothing behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use guardian_netsim::probe::ProbeServers;
use guardian_netsim::{Dir, Host, Impairment, Lab, NatProfile};

fn namespaces() -> String {
    String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

#[test]
fn every_profile_maps_and_filters_as_named() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let lab = Lab::new().unwrap();
    let servers = ProbeServers::new(&lab).unwrap();
    let mut wrong = Vec::new();
    for p in NatProfile::ALL {
        let host = lab.host_behind(&format!("h-{}", p.name()), p).unwrap();
        let report = servers.probe(&lab, &host).unwrap();
        eprintln!("{}", report.summary());
        if let Err(e) = report.check() {
            wrong.push(format!("{p}: {e}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "profiles not as named:\n{}",
        wrong.join("\n")
    );
}

/// A UDP echo server in `host` on port 7.
fn udp_echo(lab: &Lab, host: &Host) -> UdpSocket {
    udp_echo_on(lab, host, 7)
}

/// A UDP echo server in `host` on `port`.
fn udp_echo_on(lab: &Lab, host: &Host, port: u16) -> UdpSocket {
    let s = lab
        .run_in(host, move || UdpSocket::bind(("0.0.0.0", port)).unwrap())
        .unwrap();
    let server = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let _ = server.send_to(&buf[..n], from);
        }
    });
    s
}

/// Round trips of `n` numbered UDP pings from `client` to `to`: (answered, median RTT).
fn pings(client: &UdpSocket, to: std::net::SocketAddr, n: u32) -> (u32, Duration) {
    client
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut rtts = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        client.send_to(&i.to_be_bytes(), to).unwrap();
        let mut buf = [0u8; 16];
        loop {
            match client.recv_from(&mut buf) {
                Ok((4, _)) if buf[..4] == i.to_be_bytes() => {
                    rtts.push(t.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    rtts.sort();
    let median = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
    (rtts.len() as u32, median)
}

#[test]
fn impairment_delays_drops_and_limits() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let lab = Lab::new().unwrap();
    let a = lab.public_host("a").unwrap();
    let b = lab.public_host("b").unwrap();
    let _echo = udp_echo(&lab, &b);
    let to = std::net::SocketAddr::from((b.ip, 7));
    let client = lab
        .run_in(&a, || UdpSocket::bind("0.0.0.0:0").unwrap())
        .unwrap();

    let (n, rtt) = pings(&client, to, 5);
    assert_eq!(n, 5);
    assert!(rtt < Duration::from_millis(20), "clean RTT {rtt:?}");

    // 100 ms each way: about 200 ms a round trip.
    lab.impair(
        &a.link,
        Impairment {
            delay: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    let (n, rtt) = pings(&client, to, 10);
    eprintln!(
        "backend {:?}: 100 ms each way, median RTT {rtt:?}",
        lab.backend()
    );
    assert_eq!(n, 10);
    assert!(
        rtt >= Duration::from_millis(195) && rtt < Duration::from_millis(300),
        "RTT {rtt:?}"
    );

    // 20% loss one way: about 80% of pings answered.
    lab.clear_impairment(&a.link).unwrap();
    lab.impair_dir(
        &a.link,
        Dir::Up,
        Impairment {
            loss: 0.2,
            ..Default::default()
        },
    )
    .unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answered = 0;
    for i in 0u32..400 {
        client.send_to(&i.to_be_bytes(), to).unwrap();
        let mut buf = [0u8; 16];
        if client.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
    }
    eprintln!("20% loss: {answered} of 400 answered");
    assert!(
        (280..=360).contains(&answered),
        "{answered} of 400 answered"
    );

    // 2 Mbit/s: 500 kB take about 2 s.
    lab.clear_impairment(&a.link).unwrap();
    lab.impair_dir(
        &a.link,
        Dir::Up,
        Impairment {
            rate_kbit: Some(2000),
            ..Default::default()
        },
    )
    .unwrap();
    let listener = lab
        .run_in(&b, || TcpListener::bind("0.0.0.0:9").unwrap())
        .unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut n = 0;
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        n
    });
    let bip = b.ip;
    let t = Instant::now();
    let sent = lab
        .run_in(&a, move || {
            let mut s = TcpStream::connect((bip, 9)).unwrap();
            let data = vec![7u8; 500_000];
            s.write_all(&data).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            data.len()
        })
        .unwrap();
    let got = sink.join().unwrap();
    let took = t.elapsed();
    eprintln!("2 Mbit/s: {sent} B in {took:?}");
    assert_eq!(got, sent);
    assert!(
        took >= Duration::from_millis(1700) && took < Duration::from_secs(4),
        "{took:?}"
    );

    lab.clear_impairment(&a.link).unwrap();
    let (n, rtt) = pings(&client, to, 5);
    assert_eq!(n, 5);
    assert!(
        rtt < Duration::from_millis(20),
        "RTT after clearing {rtt:?}"
    );
}

#[test]
fn a_cut_link_passes_nothing_until_restored() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let lab = Lab::new().unwrap();
    let a = lab
        .host_behind("a", NatProfile::PortRestrictedCone)
        .unwrap();
    let b = lab.public_host("b").unwrap();
    let _echo = udp_echo(&lab, &b);
    let to = std::net::SocketAddr::from((b.ip, 7));
    let client = lab
        .run_in(&a, || UdpSocket::bind("0.0.0.0:0").unwrap())
        .unwrap();
    assert_eq!(pings(&client, to, 3).0, 3);
    lab.cut(&a.link).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert_eq!(pings(&client, to, 3).0, 0);
    lab.restore(&a.link).unwrap();
    assert_eq!(pings(&client, to, 3).0, 3);
}

#[test]
fn blocked_udp_passes_only_dns_and_tcp_until_unblocked() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let lab = Lab::new().unwrap();
    let a = lab
        .host_behind("a", NatProfile::PortRestrictedCone)
        .unwrap();
    let b = lab.public_host("b").unwrap();
    let _echo = udp_echo(&lab, &b);
    let _dns = udp_echo_on(&lab, &b, 53);
    let to = std::net::SocketAddr::from((b.ip, 7));
    let dns = std::net::SocketAddr::from((b.ip, 53));
    let listener = lab
        .run_in(&b, || TcpListener::bind("0.0.0.0:9").unwrap())
        .unwrap();
    std::thread::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(b"hi");
        }
    });
    let tcp = |lab: &Lab| {
        let bip = b.ip;
        lab.run_in(&a, move || {
            let mut s =
                TcpStream::connect_timeout(&(bip, 9).into(), Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).ok().map(|_| buf == *b"hi")
        })
        .unwrap()
    };
    let client = lab
        .run_in(&a, || UdpSocket::bind("0.0.0.0:0").unwrap())
        .unwrap();
    assert_eq!(pings(&client, to, 3).0, 3);
    lab.block_udp(&a).unwrap();
    lab.block_udp(&a).unwrap(); // twice is once
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The flow already going is cut, not only new ones; DNS and TCP still pass.
    assert_eq!(pings(&client, to, 3).0, 0);
    assert_eq!(pings(&client, dns, 3).0, 3);
    assert_eq!(tcp(&lab), Some(true));
    lab.unblock_udp(&a).unwrap();
    assert_eq!(pings(&client, to, 3).0, 3);
    lab.unblock_udp(&a).unwrap();
    assert!(lab.block_udp(&b).is_err(), "a public host has no router");
}

#[test]
fn a_dropped_lab_leaves_nothing_and_leftovers_are_swept() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let prefix;
    {
        let lab = Lab::new().unwrap();
        prefix = lab.prefix().to_owned();
        let h = lab.host_behind("x", NatProfile::Cgnat).unwrap();
        lab.impair(
            &h.link,
            Impairment {
                delay: Duration::from_millis(5),
                loss: 0.01,
                rate_kbit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap();
        let mut sleeper = std::process::Command::new("sleep");
        sleeper.arg("600");
        let p = lab.spawn(&h, "sleeper", sleeper).unwrap();
        std::mem::forget(p); // the lab, not the handle, must end it
        assert!(namespaces().contains(&prefix));
    }
    assert!(!namespaces().contains(&prefix), "left: {}", namespaces());

    // A namespace of a lab whose process is gone.
    let dead = (100_000..4_000_000)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let name = format!("gns-{dead}-0-leftover");
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success()
    );
    let removed = guardian_netsim::sweep().unwrap();
    assert!(removed.contains(&name), "{removed:?}");
    assert!(!namespaces().contains(&name));
}
