//! Liveness with real processes: the vm is killed with SIGKILL (no goodbye on any
//! connection), or frozen with SIGSTOP on a TCP-only link (nothing answers, nothing resets),
//! and the edge notices within 15 s (QUIC idle, the ping bound), then is back within 5 s of
//! the vm's return (the vm link's backoff is capped at 3 s). Read from the edge's
//! `vm-link.json`, the state `guardian-edge status` prints.

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

/// Starts the vm and waits for the edge's link: the time from the vm's API answering to the
/// link being up.
fn restart_and_reconnect(vm: &mut Vm, edge: &Edge, logs: &[&std::path::Path]) -> Duration {
    vm.start();
    let back = Instant::now();
    wait_for(
        "the edge to reconnect",
        Duration::from_secs(30),
        logs,
        || link(edge).is_some_and(|l| l.connected),
    );
    back.elapsed()
}

#[test]
fn a_killed_vm_is_noticed_in_seconds_and_its_return_at_once() {
    let root = tempfile::tempdir().unwrap();
    let (mut vm, edge) = enrolled(root.path(), Duration::from_secs(30));
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
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
        let reconnected = restart_and_reconnect(&mut vm, &edge, &logs);
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

/// Freezes the vm (SIGSTOP): its sockets stay open and nothing answers, as when the host
/// hangs or the network drops every packet; no reset tells the edge.
fn freeze(vm: &Vm) {
    let pid = vm.proc.as_ref().expect("running").child.id();
    let ok = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -STOP {pid}");
}

#[test]
fn a_hung_vm_on_tcp_is_noticed_by_the_ping_bound() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    // TCP only: no QUIC idle timeout to fall back on; the ping bound must hold alone.
    vm.edit_config(|c| c.p2p.listen.retain(|a| a.contains("/tcp/")));
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for("the edge's link up", Duration::from_secs(30), &logs, || {
        link(&edge).is_some_and(|l| l.connected)
    });
    freeze(&vm);
    let frozen = Instant::now();
    wait_for("the edge to notice", Duration::from_secs(40), &logs, || {
        link(&edge).is_some_and(|l| !l.connected)
    });
    let noticed = frozen.elapsed();
    eprintln!(
        "hung vm on TCP noticed after {:.1} s",
        noticed.as_secs_f64()
    );
    assert!(
        noticed <= Duration::from_secs(15),
        "the hung vm was noticed after {noticed:?}"
    );
    // SIGKILL ends a stopped process too; the vm comes back and so does the link.
    vm.kill9();
    let reconnected = restart_and_reconnect(&mut vm, &edge, &logs);
    assert!(reconnected <= Duration::from_secs(5), "{reconnected:?}");
}
