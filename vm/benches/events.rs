//! `make bench-events`: event records from an edge to the vm on loopback, acknowledged once
//! stored, beside a plain request/response over a raw quinn stream in the same run.
//!
//! - guardian: a real vm (`service::run`, SQLite in WAL mode with `synchronous = FULL`) and an
//!   edge node enrolled from a real package; each request is one `EventBatch` on
//!   `/guardian/events/1` answered with `EventAck::Stored` after the insert commits.
//! - quinn: a bare quinn 0.11 client and server on loopback; each request opens a
//!   bidirectional stream, sends the same encoded batch in a frame and reads an ack frame of
//!   the same encoded size. No storage, no libp2p: the floor for one request over QUIC.
//!
//! - node only: the same edge and vm nodes answering without storage (libp2p and codec cost).
//!
//! Printed: p50 and p99 latency of single-event requests (sequential), events per second for
//! single-event and 64-event batches, and each as a ratio against quinn. Counts come from
//! `GUARDIAN_BENCH_REQUESTS` (default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use guardian_node::{Multiaddr, Node, NodeConfig, PeerId, Role};
use protocols::codec::encode;
use protocols::messages::Category;
use protocols::messages::enroll::{EnrollRequest, EnrollResponse};
use protocols::messages::events::{EventAck, EventBatch, EventRecord};
use protocols::package::InstallPackage;

fn requests() -> usize {
    std::env::var("GUARDIAN_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn batch(tenant: &str, edge: &str, start: usize, n: usize) -> EventBatch {
    EventBatch {
        events: (start..start + n)
            .map(|i| EventRecord {
                event_id: format!("bench-{i}"),
                tenant_id: tenant.into(),
                edge_id: edge.into(),
                camera_id: "bench-cam".into(),
                started_at_ms: 1_790_000_000_000 + i as u64,
                ended_at_ms: 1_790_000_005_000 + i as u64,
                category: Category::Person,
                score_milli: 870,
                clip_cid: Some(format!("clip-{i}")),
                snapshot_cid: Some(format!("snap-{i}")),
                thumbnail_cid: None,
                truncated: false,
                ..Default::default()
            })
            .collect(),
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    single_eps: f64,
    batch_eps: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `one(batch_size, index)` sequentially: latencies of single-event requests, then
/// throughput of 64-event batches.
async fn measure<F, Fut>(n: usize, mut one: F) -> Stats
where
    F: FnMut(usize, usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..50 {
        one(1, 10_000_000 + i).await; // warm-up
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        one(1, i).await;
        lat.push(t.elapsed());
    }
    let single_eps = n as f64 / start.elapsed().as_secs_f64();
    let batches = (n / 64).max(10);
    let start = Instant::now();
    for b in 0..batches {
        one(64, 20_000_000 + b * 64).await;
    }
    let batch_eps = (batches * 64) as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    Stats {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        single_eps,
        batch_eps,
    }
}

async fn guardian(n: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vm");
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    guardian_vm::provision::init(
        &data,
        "127.0.0.1",
        &[format!("/ip4/127.0.0.1/udp/{port}/quic-v1")],
        Some("127.0.0.1:0"),
    )
    .unwrap();
    let pkg_path = dir.path().join("edge.tar");
    guardian_vm::provision::package_edge(
        &data,
        "bench",
        guardian_vm::provision::Owner {
            recipient: "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd",
            signing_key: None,
        },
        &pkg_path,
        None,
        guardian_vm::provision::PackageFormat::Tar,
    )
    .unwrap();
    let pkg = InstallPackage::from_tar(std::fs::File::open(&pkg_path).unwrap()).unwrap();
    let stop = guardian_node::Shutdown::new();
    let vm = {
        let (data, stop) = (data.clone(), stop.clone());
        tokio::spawn(async move { guardian_vm::service::run(&data, stop).await.unwrap() })
    };
    let vm_peer: PeerId = pkg.info.vm_peer_id.parse().unwrap();
    let addrs: Vec<Multiaddr> = pkg
        .info
        .vm_addresses
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    // As an edge does: enroll as the package's enrollment identity with a key of its own, then
    // connect with that key.
    let own_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let request = EnrollRequest::new(
        pkg.info.token().unwrap(),
        &own_key,
        // The edge's own age recipient (any X25519 recipient: the bench never decrypts).
        "age1ydtd594d737rjz4ezm8ckwzrkv7n8qge5xuh4zj8taxdvhl4sssq2upmtd",
        "bench",
    )
    .unwrap();
    let start = |key| {
        let mut config = NodeConfig::new(Role::Edge, key);
        config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
        Node::start(config)
    };
    let enrolling = start(pkg.info.enrollment_key().unwrap()).await.unwrap();
    let mut enrolled = false;
    for _ in 0..100 {
        if enrolling.handle.dial(vm_peer, addrs.clone()).await.is_ok()
            && let Ok(EnrollResponse::Accepted(_)) =
                enrolling.handle.enroll(vm_peer, request.clone()).await
        {
            enrolled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(enrolled, "the bench edge could not enroll");
    enrolling.handle.shutdown().await;
    let edge = start(own_key.clone()).await.unwrap();
    let h = edge.handle.clone();
    let mut connected = false;
    for _ in 0..100 {
        if h.dial(vm_peer, addrs.clone()).await.is_ok()
            && h.connection(vm_peer).await.unwrap().is_some()
        {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connected,
        "the bench edge could not connect with its own key"
    );
    let tenant = pkg.info.tenant_id.clone();
    let edge_id = protocols::signed::peer_id_of(&own_key.verifying_key());
    let stats = measure(n, |size, i| {
        let h = h.clone();
        let b = batch(&tenant, &edge_id, i, size);
        async move {
            match h.send_events(vm_peer, b).await {
                Ok(EventAck::Stored { event_ids }) => assert_eq!(event_ids.len(), size),
                other => panic!("events not stored: {other:?}"),
            }
        }
    })
    .await;
    edge.handle.shutdown().await;
    stop.trigger();
    let _ = vm.await;
    stats
}

/// Two libp2p nodes in this process, the answer given without storage: what libp2p and the
/// codec cost, apart from SQLite.
async fn node_only(n: usize) -> Stats {
    use ed25519_dalek::SigningKey;
    let mut vm_config = NodeConfig::new(Role::Vm, SigningKey::generate(&mut rand::rngs::OsRng));
    vm_config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    let mut vm = Node::start(vm_config).await.unwrap();
    let vm_peer = vm.handle.peer_id();
    let addrs = vm.handle.listen_addrs().await.unwrap();
    tokio::spawn(async move {
        while let Some(r) = vm.inbound.recv().await {
            if let guardian_node::Inbound::Events { batch, reply, .. } = r {
                reply.send(EventAck::Stored {
                    event_ids: batch.events.into_iter().map(|e| e.event_id).collect(),
                });
            }
        }
    });
    let mut config = NodeConfig::new(Role::Edge, SigningKey::generate(&mut rand::rngs::OsRng));
    config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    let edge = Node::start(config).await.unwrap();
    edge.handle.dial(vm_peer, addrs).await.unwrap();
    let h = edge.handle.clone();
    measure(n, |size, i| {
        let h = h.clone();
        let b = batch("t", "e", i, size);
        async move {
            match h.send_events(vm_peer, b).await {
                Ok(EventAck::Stored { event_ids }) => assert_eq!(event_ids.len(), size),
                other => panic!("{other:?}"),
            }
        }
    })
    .await
}

async fn quinn_reference(n: usize) -> Stats {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server_config =
        quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into()).unwrap();
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let ack_len = encode(&EventAck::Stored {
        event_ids: vec!["bench-0".into()],
    })
    .unwrap()
    .len();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let conn = incoming.await.unwrap();
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let mut len = [0u8; 4];
                        recv.read_exact(&mut len).await.unwrap();
                        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                        recv.read_exact(&mut body).await.unwrap();
                        let mut ack = (ack_len as u32).to_be_bytes().to_vec();
                        ack.resize(4 + ack_len, 0xa5);
                        send.write_all(&ack).await.unwrap();
                        send.finish().unwrap();
                    });
                }
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(
        quinn::ClientConfig::with_root_certificates(Arc::new(roots)).unwrap(),
    );
    let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
    measure(n, |size, i| {
        let conn = conn.clone();
        let frame = {
            let bytes = encode(&batch("t", "e", i, size)).unwrap();
            let mut f = (bytes.len() as u32).to_be_bytes().to_vec();
            f.extend_from_slice(&bytes);
            f
        };
        async move {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&frame).await.unwrap();
            send.finish().unwrap();
            let ack = recv.read_to_end(1 << 16).await.unwrap();
            assert_eq!(ack.len(), 4 + ack_len);
        }
    })
    .await
}

fn main() {
    let n = requests();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = rt.block_on(quinn_reference(n));
    let o = rt.block_on(node_only(n));
    let g = rt.block_on(guardian(n));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("bench-events: {n} sequential single-event requests, then 64-event batches, loopback");
    println!("                         p50 ms   p99 ms   events/s (1/req)   events/s (64/req)");
    println!(
        "  raw quinn              {:>6.3}   {:>6.3}   {:>16.0}   {:>17.0}",
        ms(q.p50),
        ms(q.p99),
        q.single_eps,
        q.batch_eps
    );
    println!(
        "  guardian node only     {:>6.3}   {:>6.3}   {:>16.0}   {:>17.0}   (libp2p + codec, answered without storage)",
        ms(o.p50),
        ms(o.p99),
        o.single_eps,
        o.batch_eps
    );
    println!(
        "  guardian edge -> vm    {:>6.3}   {:>6.3}   {:>16.0}   {:>17.0}   (stored in SQLite before the ack)",
        ms(g.p50),
        ms(g.p99),
        g.single_eps,
        g.batch_eps
    );
    println!(
        "  ratio node-only/quinn: p50 latency {:.2}x, throughput {:.2}x (1/req), {:.2}x (64/req)",
        ms(o.p50) / ms(q.p50),
        o.single_eps / q.single_eps,
        o.batch_eps / q.batch_eps
    );
    println!(
        "  ratio guardian/quinn: p50 latency {:.2}x, p99 latency {:.2}x, throughput {:.2}x (1/req), {:.2}x (64/req)",
        ms(g.p50) / ms(q.p50),
        ms(g.p99) / ms(q.p99),
        g.single_eps / q.single_eps,
        g.batch_eps / q.batch_eps
    );
}
