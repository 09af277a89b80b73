//! The edge's discovery task: scans its LAN ([`crate::discover::scan`]) at start, every
//! `[discovery] interval_secs` (600), and when the owner asks (`/guardian/scan/1`, served
//! here), and reports each scan's findings to the vm (`/guardian/discovery/1`). Between
//! scans it listens for ONVIF hellos and byes: a camera that joins is inspected and
//! reported at once, one that leaves is dropped from the report.
//!
//! `[discovery]` is read from `edge.toml` at each scan, so turning it on or off needs no
//! restart. Off, the edge reports once that discovery is off (so the owner sees why nothing
//! is found) and answers scan requests with [`ScanAnswer::Disabled`]. A report that could not
//! be delivered is sent again every [`RESEND_EVERY`] until the vm acknowledges it; only the
//! latest is kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use guardian_node::clock::SharedClock;
use guardian_node::{NodeHandle, PeerId, Shutdown};
use protocols::codec::{read_frame, write_frame};
use protocols::messages::discovery::{DiscoveryAck, DiscoveryReport, ScanAnswer, ScanRequest};
use tokio::sync::mpsc;

use crate::config::{DiscoveryConfig, EdgeConfig};
use crate::discover::scan::{self, Known};
use crate::discover::wsd::{self, Heard};

/// How often an undelivered report is sent again.
pub const RESEND_EVERY: Duration = Duration::from_secs(5);
/// How long one report exchange may take.
const SEND_WITHIN: Duration = Duration::from_secs(15);

/// Why the task should look now.
#[derive(Debug)]
enum Wake {
    /// The owner asked for a scan.
    Scan,
    /// A camera said hello or bye.
    Heard(Heard),
}

/// The handle the scan server uses.
#[derive(Clone)]
pub struct Scanner {
    data: PathBuf,
    running: Arc<AtomicBool>,
    requested: Arc<AtomicBool>,
    wake: mpsc::Sender<Wake>,
}

impl Scanner {
    /// What to answer a scan request, asking for the scan: at once, or (while one runs,
    /// which may have looked before what the owner just plugged in) right after it.
    pub fn request(&self) -> ScanAnswer {
        if !load(&self.data).0.enabled {
            return ScanAnswer::Disabled;
        }
        self.requested.store(true, Ordering::SeqCst);
        // A full queue holds a wake already, which finds the request.
        let _ = self.wake.try_send(Wake::Scan);
        if self.running.load(Ordering::SeqCst) {
            ScanAnswer::AlreadyRunning
        } else {
            ScanAnswer::Started
        }
    }
}

/// `[discovery]` and the configured ONVIF cameras' credentials, from `edge.toml` now.
fn load(data: &std::path::Path) -> (DiscoveryConfig, Vec<Known>) {
    match EdgeConfig::load(&data.join(crate::paths::CONFIG)) {
        Ok(c) => {
            let known = scan::known(&c);
            (c.discovery, known)
        }
        Err(_) => (DiscoveryConfig::default(), Vec::new()),
    }
}

/// The task's state.
pub struct Discovery {
    data: PathBuf,
    handle: NodeHandle,
    vm: PeerId,
    clock: SharedClock,
    running: Arc<AtomicBool>,
    requested: Arc<AtomicBool>,
    wake_rx: mpsc::Receiver<Wake>,
    wake_tx: mpsc::Sender<Wake>,
}

impl Discovery {
    /// The task and the scanner handle for the scan server.
    pub fn new(
        data: PathBuf,
        handle: NodeHandle,
        vm: PeerId,
        clock: SharedClock,
    ) -> (Self, Scanner) {
        let (wake_tx, wake_rx) = mpsc::channel(16);
        let running = Arc::new(AtomicBool::new(false));
        let requested = Arc::new(AtomicBool::new(false));
        let scanner = Scanner {
            data: data.clone(),
            running: running.clone(),
            requested: requested.clone(),
            wake: wake_tx.clone(),
        };
        (
            Discovery {
                data,
                handle,
                vm,
                clock,
                running,
                requested,
                wake_rx,
                wake_tx,
            },
            scanner,
        )
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: Shutdown) {
        let mut report: Option<DiscoveryReport> = None;
        let mut delivered = true;
        let mut next_scan = self.clock.monotonic();
        let mut listener: Option<Shutdown> = None;
        let mut reported_off = false;
        loop {
            let (cfg, known) = load(&self.data);
            if cfg.enabled && listener.is_none() && cfg.onvif {
                listener = Some(self.listen(&shutdown));
            }
            if !cfg.enabled {
                if let Some(l) = listener.take() {
                    l.trigger();
                }
                if !reported_off {
                    let now = self.clock.wall_ms();
                    report = Some(off_report(now));
                    delivered = false;
                    reported_off = true;
                }
            } else if self.clock.monotonic() >= next_scan {
                reported_off = false;
                report = Some(self.scan(cfg.clone(), known.clone()).await);
                delivered = false;
                next_scan = self.clock.monotonic() + Duration::from_secs(cfg.interval_secs.max(60));
            }
            if !delivered {
                let pending = report.clone();
                if let Some(r) = pending {
                    delivered = send(self.handle.clone(), self.vm, r).await;
                }
            }
            let wait = if !delivered {
                RESEND_EVERY
            } else if !cfg.enabled {
                Duration::from_secs(30)
            } else {
                next_scan
                    .saturating_duration_since(self.clock.monotonic())
                    .min(Duration::from_secs(30))
            };
            let wake = tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                w = self.wake_rx.recv() => w,
                _ = self.clock.sleep(wait.max(Duration::from_millis(100))) => None,
            };
            match wake {
                // Several requests before a scan starts make one scan.
                Some(Wake::Scan) if cfg.enabled && self.requested.swap(false, Ordering::SeqCst) => {
                    next_scan = self.clock.monotonic()
                }
                Some(Wake::Heard(h)) if cfg.enabled => {
                    if let Some(r) = report.take() {
                        let (r, changed) = heard(self.clock.clone(), r, h, known.clone()).await;
                        report = Some(r);
                        if changed {
                            delivered = false;
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(l) = listener {
            l.trigger();
        }
    }

    async fn scan(&self, cfg: DiscoveryConfig, known: Vec<Known>) -> DiscoveryReport {
        self.running.store(true, Ordering::SeqCst);
        let clock = self.clock.clone();
        let scanning: std::pin::Pin<Box<dyn std::future::Future<Output = DiscoveryReport> + Send>> =
            Box::pin(scan::scan(cfg, known, move || clock.wall_ms()));
        let r = scanning.await;
        self.running.store(false, Ordering::SeqCst);
        tracing::info!(
            findings = r.findings.len(),
            errors = r.errors.len(),
            took_ms = r.finished_at_ms.saturating_sub(r.started_at_ms),
            "LAN scanned for cameras"
        );
        for e in &r.errors {
            tracing::warn!(error = %e, "part of the camera scan failed");
        }
        r
    }

    /// Starts the hello and bye listener on a thread; its stop signal.
    fn listen(&self, shutdown: &Shutdown) -> Shutdown {
        let stop = shutdown.child();
        let s = stop.clone();
        let tx = self.wake_tx.clone();
        let _ = std::thread::Builder::new()
            .name("ws-discovery".into())
            .spawn(move || {
                let lan: Vec<std::net::Ipv4Addr> = scan::interfaces()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(crate::discover::subnets::eligible)
                    .map(|n| n.addr)
                    .collect();
                if lan.is_empty() {
                    return;
                }
                if let Err(e) = wsd::listen(&lan, &s, |h| {
                    let _ = tx.try_send(Wake::Heard(h));
                }) {
                    tracing::warn!(error = %e, "cannot listen for ONVIF hellos and byes (port 3702)");
                }
            });
        stop
    }
}

/// `report` after a hello or bye, and whether it changed.
async fn heard(
    clock: SharedClock,
    mut report: DiscoveryReport,
    h: Heard,
    known: Vec<Known>,
) -> (DiscoveryReport, bool) {
    match h {
        Heard::Bye(endpoint) => {
            let before = report.findings.len();
            report
                .findings
                .retain(|f| f.endpoint.as_deref() != Some(endpoint.as_str()));
            let gone = report.findings.len() != before;
            if gone {
                tracing::info!(%endpoint, "an ONVIF camera left the LAN");
            }
            (report, gone)
        }
        Heard::Hello(endpoint, from) => {
            let now = clock.wall_ms();
            let e = endpoint.clone();
            let Ok(Some(found)) =
                tokio::task::spawn_blocking(move || scan::inspect_onvif(&e, from, &known, now))
                    .await
            else {
                return (report, false);
            };
            tracing::info!(address = %found.address, endpoint = %endpoint.address, "an ONVIF camera joined the LAN");
            // What the last scan knew of this camera (its RTSP ports) stays; the rest is new.
            let address = found.address.clone();
            let same = |f: &protocols::messages::discovery::Finding| {
                f.kind != protocols::messages::discovery::FindingKind::V4l2
                    && (f.endpoint.as_deref() == Some(endpoint.address.as_str())
                        || f.address == address)
            };
            let mut found = found;
            for f in report.findings.iter().filter(|f| same(f)) {
                found.rtsp_ports.extend(&f.rtsp_ports);
            }
            found.rtsp_ports.sort_unstable();
            found.rtsp_ports.dedup();
            report.findings.retain(|f| !same(f));
            let mut all = std::mem::take(&mut report.findings);
            all.push(found);
            report.findings = crate::discover::merge(all);
            report.finished_at_ms = now;
            (report, true)
        }
    }
}

/// Sends `report` to the vm; whether it was stored. (Boxed and owned: a future holding
/// borrows across the stream's awaits is not `Send` for the spawned task, rust-lang/rust#102211.)
fn send(
    handle: NodeHandle,
    vm: PeerId,
    report: DiscoveryReport,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
    Box::pin(async move {
        if !matches!(handle.connection(vm).await, Ok(Some(_))) {
            return false;
        }
        let mut control = handle.streams();
        let sent = tokio::time::timeout(
            SEND_WITHIN,
            guardian_node::open_with_request::<_, DiscoveryAck>(
                &mut control,
                vm,
                protocols::messages::DISCOVERY,
                &report,
            ),
        )
        .await;
        match sent {
            Ok(Ok((mut stream, DiscoveryAck::Stored))) => {
                let _ = futures::AsyncWriteExt::close(&mut stream).await;
                tracing::info!(
                    findings = report.findings.len(),
                    "camera findings reported to the vm"
                );
                true
            }
            Ok(Ok((_, DiscoveryAck::Refused(reason)))) => {
                tracing::warn!(%reason, "the vm refused the camera findings; will retry");
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reporting camera findings failed; will retry");
                false
            }
            Err(_) => {
                tracing::warn!("the vm did not take the camera findings in time; will retry");
                false
            }
        }
    })
}

/// The report of an edge whose discovery is off.
pub fn off_report(now_ms: u64) -> DiscoveryReport {
    DiscoveryReport {
        enabled: false,
        started_at_ms: now_ms,
        finished_at_ms: now_ms,
        scanned: Vec::new(),
        findings: Vec::new(),
        errors: Vec::new(),
    }
}

/// Serves `/guardian/scan/1` from `vm` until `shutdown`.
pub async fn serve_scan(
    scanner: Scanner,
    vm: PeerId,
    incoming: guardian_node::IncomingStreams,
    shutdown: Shutdown,
) {
    guardian_node::serve_streams_within(
        incoming,
        1,
        shutdown,
        Duration::from_secs(10),
        "scan request",
        |peer, mut stream| {
            let scanner = scanner.clone();
            async move {
                anyhow::ensure!(peer == vm, "a scan asked by a peer that is not the vm");
                let _: ScanRequest = read_frame(&mut stream).await?;
                let answer = scanner.request();
                tracing::info!(?answer, "the owner asked for a camera scan");
                write_frame(&mut stream, &answer).await?;
                let _ = futures::AsyncWriteExt::close(&mut stream).await;
                anyhow::Ok(())
            }
        },
    )
    .await
}
