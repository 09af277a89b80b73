//! Two nodes on 127.0.0.1 (QUIC): a role serves only the request-response protocols the
//! protocol table gives it. An events request to an edge or a client is refused by libp2p
//! (unsupported protocol) and never reaches the application; the same request to a vm
//! reaches its inbound queue and its answer comes back.

use std::time::Duration;

use guardian_node::{Inbound, Node, NodeConfig, RequestError, Role};
use protocols::messages::Category;
use protocols::messages::events::{EventAck, EventBatch, EventRecord};

const WAIT: Duration = Duration::from_secs(20);

async fn start(role: Role) -> Node {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut config = NodeConfig::new(role, key);
    config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    config.request_timeout = Duration::from_secs(10);
    tokio::time::timeout(WAIT, Node::start(config))
        .await
        .expect("the node starts in time")
        .expect("the node starts")
}

/// Connects `from` to `to`.
async fn connect(from: &Node, to: &Node) {
    let addresses = to.handle.listen_addrs().await.unwrap();
    assert!(!addresses.is_empty());
    tokio::time::timeout(WAIT, from.handle.dial(to.handle.peer_id(), addresses))
        .await
        .expect("the dial ends in time")
        .expect("the nodes connect");
}

fn batch(event_id: &str) -> EventBatch {
    EventBatch {
        events: vec![EventRecord {
            event_id: event_id.into(),
            tenant_id: "tenant".into(),
            edge_id: "edge".into(),
            camera_id: "front-door".into(),
            started_at_ms: 1_700_000_000_000,
            ended_at_ms: 1_700_000_001_000,
            category: Category::Person,
            score_milli: 900,
            clip_cid: None,
            snapshot_cid: None,
            thumbnail_cid: None,
            truncated: false,
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_and_clients_refuse_events_before_the_application() {
    let sender = start(Role::Edge).await;
    for role in [Role::Edge, Role::Client] {
        let mut receiver = start(role).await;
        connect(&sender, &receiver).await;
        let answer = tokio::time::timeout(
            WAIT,
            sender
                .handle
                .send_events(receiver.handle.peer_id(), batch("e-1")),
        )
        .await
        .expect("the request ends in time");
        assert_eq!(
            answer,
            Err(RequestError::UnsupportedProtocol),
            "{role:?} must not serve /guardian/events/1"
        );
        // Still connected: the refusal is the protocol's, not the connection's.
        assert!(
            sender
                .handle
                .connection(receiver.handle.peer_id())
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            receiver.inbound.try_recv().is_err(),
            "{role:?}: the request reached the application"
        );
        receiver.handle.shutdown().await;
    }
    sender.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_receives_events_and_its_answer_returns() {
    let sender = start(Role::Edge).await;
    let mut vm = start(Role::Vm).await;
    connect(&sender, &vm).await;
    let request = {
        let h = sender.handle.clone();
        let vm_peer = vm.handle.peer_id();
        tokio::spawn(async move { h.send_events(vm_peer, batch("e-2")).await })
    };
    let inbound = tokio::time::timeout(WAIT, vm.inbound.recv())
        .await
        .expect("the vm receives the request in time")
        .expect("the node runs");
    let Inbound::Events { peer, batch, reply } = inbound else {
        panic!("not an events request");
    };
    assert_eq!(peer, sender.handle.peer_id());
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].event_id, "e-2");
    reply.send(EventAck::Stored {
        event_ids: vec!["e-2".into()],
    });
    let answer = tokio::time::timeout(WAIT, request)
        .await
        .expect("the answer arrives in time")
        .unwrap();
    assert_eq!(
        answer,
        Ok(EventAck::Stored {
            event_ids: vec!["e-2".into()]
        })
    );
    vm.handle.shutdown().await;
    sender.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_gate_counts_the_stranger_it_refuses() {
    let stranger = start(Role::Edge).await;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut config = NodeConfig::new(Role::Vm, key);
    config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    config.allow = guardian_node::AllowList::closed();
    let allow = config.allow.clone();
    let mut vm = Node::start(config).await.unwrap();
    assert_eq!(allow.refused_count(), 0);
    let addresses = vm.handle.listen_addrs().await.unwrap();
    // The handshake may complete on the stranger's side before the vm's gate closes it.
    let _ = tokio::time::timeout(WAIT, stranger.handle.dial(vm.handle.peer_id(), addresses)).await;
    let _ = tokio::time::timeout(
        WAIT,
        stranger
            .handle
            .send_events(vm.handle.peer_id(), batch("e-3")),
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while allow.refused_count() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(allow.refused_count() >= 1, "the gate counted no refusal");
    assert!(
        vm.inbound.try_recv().is_err(),
        "a refused peer's request reached the vm's application"
    );
    assert_eq!(
        vm.handle
            .connection(stranger.handle.peer_id())
            .await
            .unwrap(),
        None
    );
    vm.handle.shutdown().await;
    stranger.handle.shutdown().await;
}
