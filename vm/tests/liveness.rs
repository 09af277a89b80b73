//! Liveness with real processes: the vm is killed with SIGKILL (no goodbye on any
//! connection), and the edge notices within 15 s (ping timeout, QUIC idle), then is back
//! within 5 s of the vm's return (the vm link's backoff is capped at 3 s). Read from the
//! edge's `vm-link.json`, the state `guardian-edge status` prints.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[derive(serde::Deserialize)]
struct Link {
    connected: bool,
}

fn link(edge: &Edge) -> Option<Link> {
    let bytes = std::fs::read(edge.dir.join("vm-link.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[test]
fn a_killed_vm_is_noticed_in_seconds_and_its_return_at_once() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge to enroll", Duration::from_secs(30), &logs, || {
        vm.devices().first().is_some_and(|d| d["online"] == true)
    });
    wait_for("the edge's link up", Duration::from_secs(30), &logs, || {
        link(&edge).is_some_and(|l| l.connected)
    });

    for round in 0..2 {
        vm.kill9();
        let killed = Instant::now();
        wait_for("the edge to notice", Duration::from_secs(30), &logs, || {
            link(&edge).is_some_and(|l| !l.connected)
        });
        let noticed = killed.elapsed();
        // Down long enough for the redial backoff to reach its cap.
        std::thread::sleep(Duration::from_secs(4));
        vm.start();
        let back = Instant::now();
        wait_for(
            "the edge to reconnect",
            Duration::from_secs(30),
            &logs,
            || link(&edge).is_some_and(|l| l.connected),
        );
        let reconnected = back.elapsed();
        eprintln!(
            "round {round}: dead vm noticed after {:.1} s, reconnected {:.1} s after its API was up",
            noticed.as_secs_f64(),
            reconnected.as_secs_f64()
        );
        assert!(
            noticed <= Duration::from_secs(15),
            "round {round}: the dead vm was noticed after {noticed:?}"
        );
        assert!(
            reconnected <= Duration::from_secs(5),
            "round {round}: the edge came back {reconnected:?} after the vm"
        );
    }
    // The status command says so.
    let status = edge.status();
    assert!(status.contains("vm link: connected since"), "{status}");
    // And the link carries events again.
    let id = edge.emit("front-door");
    wait_for(
        "the event after the restarts",
        Duration::from_secs(30),
        &logs,
        || vm.event_ids().contains(&id),
    );
}
