//! The p2p core with real processes on real sockets: enrollment from an install package,
//! events delivered exactly once across restarts of either side, refusals (another tenant,
//! a spent token, an expired token), and malformed frames that leave the vm serving.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn enrolls_and_delivers_events_exactly_once_across_restarts() {
    let root = tempfile::tempdir().unwrap();
    let (mut vm, mut edge) = enrolled(root.path(), WAIT);
    let logs = [vm.log(), edge.log()];
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    let devices = vm.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["name"], "home");

    let mut sent = vec![edge.emit("front-door"), edge.emit("front-door")];
    wait_for("2 events", WAIT, &logs, || vm.event_ids().len() == 2);

    let enrollments = vm.metric("guardian_vm_enrollments_total");
    assert!(enrollments >= Some(1.0), "{}", vm.metrics());

    // Edge down: events wait in its outbox, then go on restart.
    assert_eq!(edge.stop(), Some(0), "the edge exits cleanly on SIGTERM");
    for _ in 0..5 {
        sent.push(edge.emit("back-yard"));
    }
    let waiting: Vec<String> = edge.outbox().into_iter().map(|r| r.event_id).collect();
    assert_eq!(
        waiting,
        sent[2..],
        "the five wait in the stopped edge's outbox"
    );
    assert_eq!(
        vm.event_ids().len(),
        2,
        "nothing moves while the edge is down"
    );
    edge.start();
    wait_for("7 events after the edge restart", WAIT, &logs, || {
        vm.event_ids().len() == 7
    });
    // The restarted edge did not enroll again.
    assert_eq!(
        vm.metric("guardian_vm_enrollments_total"),
        enrollments,
        "{}",
        vm.metrics()
    );

    // vm down: the edge keeps its outbox and reconnects with backoff when the vm returns.
    assert_eq!(vm.stop(), Some(0), "the vm exits cleanly on SIGTERM");
    for _ in 0..5 {
        sent.push(edge.emit("front-door"));
    }
    // The vm stays down a while, so the edge's reconnection backs off.
    std::thread::sleep(Duration::from_secs(2));
    let waiting: Vec<String> = edge.outbox().into_iter().map(|r| r.event_id).collect();
    assert_eq!(waiting, sent[7..], "the five wait in the edge's outbox");
    vm.start();
    wait_for("12 events after the vm restart", WAIT, &logs, || {
        vm.event_ids().len() == 12
    });
    let mut got = vm.event_ids();
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "every event exactly once");
    // The edge did not enroll again with its spent token: one device, and no enrollment
    // request at all in this run of the vm.
    assert_eq!(vm.devices().len(), 1);
    assert_eq!(
        vm.metric("guardian_vm_enrollments_total").unwrap_or(0.0),
        0.0,
        "{}",
        vm.metrics()
    );
}

#[test]
fn another_tenants_package_is_refused_before_any_protocol() {
    let root = tempfile::tempdir().unwrap();
    let mut ours = Vm::init(root.path(), "ours");
    ours.start();
    let theirs = Vm::init(root.path(), "theirs");
    let mut edge = Edge::install(&theirs.package("intruder", None), &root.path().join("edge"));
    // Point the other tenant's edge at our vm.
    let mut pkg = edge.package_json();
    pkg["vm_peer_id"] = ours.peer_id.clone().into();
    pkg["vm_addresses"] = serde_json::json!([
        format!("/ip4/127.0.0.1/udp/{}/quic-v1", ours.port),
        format!("/ip4/127.0.0.1/tcp/{}", ours.port)
    ]);
    edge.set_package_json(&pkg);
    edge.start();
    let (vm_log, edge_log) = (ours.log(), edge.log());
    // The vm's gate counts each connection it refuses right after the handshake, before any
    // protocol runs on it. Two: the edge tried again and was refused again.
    const REFUSED: &str = "guardian_vm_connections_refused_total";
    wait_for(
        "guardian_vm_connections_refused_total >= 2 in /metrics (the gate refusing the foreign edge twice)",
        WAIT,
        &[&vm_log, &edge_log],
        || ours.metric(REFUSED).unwrap_or(0.0) >= 2.0,
    );
    // No protocol ran: no enrollment request was even counted, nothing registered.
    let metrics = ours.metrics();
    assert_eq!(
        metric(&metrics, "guardian_vm_enrollments_total").unwrap_or(0.0),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "guardian_vm_events_received_total"),
        Some(0.0),
        "{metrics}"
    );
    assert!(ours.devices().is_empty());
    let log = std::fs::read_to_string(&edge_log).unwrap();
    assert!(!log.contains("enrolled with the vm"), "{log}");
}

#[test]
fn spent_and_expired_tokens_are_refused_and_the_edge_says_why() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let mut first = Edge::install(&vm.package("first", None), &root.path().join("first"));
    first.start();
    let (vm_log, first_log) = (vm.log(), first.log());
    wait_for(
        "the first edge to enroll",
        WAIT,
        &[&vm_log, &first_log],
        || vm.devices().len() == 1,
    );

    // A second packaged edge presenting the first edge's (spent) token, with keys of its own:
    // it connects as the token's enrollment identity (admitted for a week after spending) and
    // is told the token was used.
    let mut second = Edge::install(&vm.package("second", None), &root.path().join("second"));
    let mut pkg = second.package_json();
    pkg["enrollment_token"] = first.package_json()["enrollment_token"].clone();
    second.set_package_json(&pkg);
    second.start();
    let second_log = second.log();
    wait_for(
        "the second edge to stop",
        WAIT,
        &[&vm_log, &second_log],
        || second.proc.as_mut().unwrap().exited().is_some(),
    );
    assert_ne!(second.proc.as_mut().unwrap().exited(), Some(0));
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(
        log.contains("enrollment refused by the vm: the enrollment token was already used"),
        "{log}"
    );
    let vm_text = std::fs::read_to_string(&vm_log).unwrap();
    assert!(vm_text.contains("enrollment refused"), "{vm_text}");
    // Counted as refused, beside the first edge's accepted one (a retried request may count
    // twice).
    let metrics = vm.metrics();
    let count = |result: &str| {
        metric(
            &metrics,
            &format!("guardian_vm_enrollments_total{{result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(
        count("refused") >= 1.0 && count("accepted") >= 1.0,
        "{metrics}"
    );

    // A package whose token expired before the edge first called.
    let mut late = Edge::install(&vm.package("late", Some(1)), &root.path().join("late"));
    let info: protocols::package::PackageInfo =
        serde_json::from_value(late.package_json()).unwrap();
    let token = info.token().unwrap().peek().unwrap();
    assert!(
        token.expires_at_ms - token.issued_at_ms <= 1000,
        "{token:?}"
    );
    wait_for("the late edge's token to expire", WAIT, &[], || {
        protocols::now_ms() > token.expires_at_ms
    });
    late.start();
    let late_log = late.log();
    wait_for("the late edge to stop", WAIT, &[&vm_log, &late_log], || {
        late.proc.as_mut().unwrap().exited().is_some()
    });
    let log = std::fs::read_to_string(&late_log).unwrap();
    assert!(log.contains("the enrollment token expired"), "{log}");
    assert_eq!(vm.devices().len(), 1, "only the first edge is registered");
}

/// Raw streams on each request-response protocol carrying broken frames: the vm drops each
/// stream and keeps serving.
#[test]
fn malformed_frames_leave_the_vm_serving() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use guardian_node::{Node, NodeConfig, Role};
    use protocols::package::InstallPackage;

    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    vm.start();
    let package =
        InstallPackage::from_tar(std::fs::File::open(vm.package("prober", None)).unwrap()).unwrap();
    let vm_peer: guardian_node::PeerId = vm.peer_id.parse().unwrap();
    let addresses: Vec<guardian_node::Multiaddr> = package
        .info
        .vm_addresses
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The package's enrollment identity: admitted by the vm's gate as an unspent package.
        let mut config = NodeConfig::new(Role::Edge, package.info.enrollment_key().unwrap());
        config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
        let node = Node::start(config).await.unwrap();
        // The allow-list refresh admits the new package within 2 s.
        let mut connected = false;
        for _ in 0..50 {
            // Until admitted, the vm's gate closes the connection right after the handshake.
            if node.handle.dial(vm_peer, addresses.clone()).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if node.handle.connection(vm_peer).await.unwrap().is_some() {
                    connected = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(connected, "cannot reach the vm");
        let mut control = node.handle.streams();
        let frames: [&[u8]; 4] = [
            &[0xff, 0xff, 0xff, 0xff],                         // oversized length
            &[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // garbage CBOR
            &[0, 0, 0, 40, 0x82, 0x01],                        // truncated
            &[0, 0, 0, 3, 0x82, 0x09, 0xa0],                   // wrong version
        ];
        for protocol in [
            protocols::messages::ENROLL,
            protocols::messages::EVENTS,
            protocols::messages::TELEMETRY,
        ] {
            for frame in frames {
                let mut s = control
                    .open_stream(vm_peer, libp2p::StreamProtocol::new(protocol))
                    .await
                    .unwrap_or_else(|e| panic!("{protocol}: {e}"));
                s.write_all(frame).await.unwrap();
                let _ = s.close().await;
                let mut answer = Vec::new();
                let read =
                    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
                        .await
                        .expect("the vm answers a broken frame by closing the stream");
                assert!(
                    read.is_err() || answer.is_empty(),
                    "{protocol}: the vm answered a broken frame with {answer:?}"
                );
            }
        }
        node.handle.shutdown().await;
    });

    // Still serving: its API answers, and a real edge enrolls and delivers.
    assert_eq!(vm.get("/api/v1/health").0, 200);
    let mut edge = Edge::install(&vm.package("real", None), &root.path().join("edge"));
    edge.start();
    let id = edge.emit("porch");
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("the real edge's event", WAIT, &[&vm_log, &edge_log], || {
        vm.event_ids() == [id.clone()]
    });
}

#[test]
fn health_reports_an_edge_that_went_silent() {
    let root = tempfile::tempdir().unwrap();
    let mut vm = Vm::init(root.path(), "vm");
    // Declare an edge offline after 1 s of silence (the default is 120 s).
    vm.edit_config(|c| {
        c.telemetry.offline_after_secs = 1;
        // The test machine's own disk may be nearly full: that is not what is tested here.
        c.telemetry.disk_full_percent = 100;
    });
    vm.start();
    let mut edge = Edge::install(&vm.package("home", None), &root.path().join("edge"));
    edge.start();
    let (vm_log, edge_log) = (vm.log(), edge.log());
    wait_for("a healthy edge", WAIT, &[&vm_log, &edge_log], || {
        let (_, h) = vm.get("/api/v1/health");
        h["status"] == "ok" && h["edges"][0]["online"] == true
    });
    edge.stop();
    wait_for(
        "the edge reported offline",
        WAIT,
        &[&vm_log, &edge_log],
        || {
            let (_, h) = vm.get("/api/v1/health");
            h["status"] == "degraded" && h["edges"][0]["issues"] == serde_json::json!(["offline"])
        },
    );
}
