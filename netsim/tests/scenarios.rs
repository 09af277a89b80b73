//! The scenarios the product must survive, with the real `guardian-vm` and `guardian-edge`
//! binaries in a lab: an edge behind each NAT enrolls and delivers events; a vm restart and a
//! 30 s cut uplink lose and duplicate nothing; a 256 kbit/s, 400 ms, 5% loss uplink still
//! carries events and an archive.

use std::time::{Duration, Instant};

use guardian_netsim::{Impairment, NatProfile, scenario};

#[test]
fn an_edge_behind_each_nat_enrolls_and_delivers_events() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let (lab, vm) = scenario::lab_with_vm().unwrap();
    let results = scenario::enroll_behind_each(&lab, &vm, &NatProfile::ALL, 3)
        .unwrap_or_else(|e| panic!("{e}"));
    for r in &results {
        eprintln!(
            "{:<16} enrolled at {:>5.1} s over {:<4}; 3 events in {:.1} s",
            r.profile.name(),
            r.enrolled_s,
            r.transport,
            r.delivered_s
        );
    }
    assert_eq!(results.len(), NatProfile::ALL.len());
    let udp_blocked = results
        .iter()
        .find(|r| r.profile == NatProfile::UdpBlocked)
        .unwrap();
    assert_eq!(
        udp_blocked.transport, "tcp",
        "UDP is blocked: the edge must use TCP"
    );
    assert_eq!(vm.event_ids(&lab).unwrap().len(), 3 * NatProfile::ALL.len());
    eprintln!("scenario a: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn vm_restart_and_a_30s_cut_lose_and_duplicate_nothing() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let (lab, mut vm) = scenario::lab_with_vm().unwrap();
    let r = scenario::outage(
        &lab,
        &mut vm,
        NatProfile::PortRestrictedCone,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    assert_eq!(r.events, 11);
    assert_eq!(vm.event_ids(&lab).unwrap().len(), 11);
    assert!(r.cut_s >= 30.0);
    assert!(r.connections_after_restart >= 1, "{r:?}");
    eprintln!("scenario b: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn a_slow_lossy_uplink_still_delivers_events_and_archives() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let (lab, vm) = scenario::lab_with_vm().unwrap();
    let imp = Impairment {
        delay: Duration::from_millis(400),
        jitter: Duration::ZERO,
        loss: 0.05,
        rate_kbit: Some(256),
    };
    let r = scenario::impaired_uplink(
        &lab,
        &vm,
        NatProfile::PortRestrictedCone,
        imp,
        3,
        64 * 1024,
        Duration::from_secs(180),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    // The path is as slow and lossy as asked: 800 ms a round trip, 1 - 0.95² ≈ 9.75% of pings
    // (or their answers) lost.
    let m = r.measured;
    assert!(
        m.median_rtt >= Duration::from_millis(795) && m.median_rtt < Duration::from_millis(1100),
        "{m:?}"
    );
    assert!((160..=195).contains(&m.answered), "{m:?}");
    // 64 KiB at 256 kbit/s is at least 2 s on the wire.
    assert!(r.archive_s >= 2.0, "{r:?}");
    eprintln!("scenario d: {:.1} s", t.elapsed().as_secs_f64());
}
