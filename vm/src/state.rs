//! What the handlers and the HTTP API share: [`VmState`] (configuration, database, storage,
//! keys, the allow-list, who is connected, the clock) and the `/metrics` counters.
//!
//! Built from the lower layers alone ([`Parts`]: config, db, storage, clock), so unit tests
//! make one with an in-memory database and a [`guardian_node::ManualClock`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ed25519_dalek::{SigningKey, VerifyingKey};
use guardian_node::{AllowList, Multiaddr, NodeHandle, SharedClock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::VmConfig;
use crate::data_dir::token_hash;
use crate::db::{self, Db, DeviceRow};
use crate::health::{self, EdgeHealth};
use crate::storage::Storage;

/// Counters exported at `/metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) events_received: Counter,
    pub(crate) events_stored: Counter,
    pub(crate) telemetry_reports: Counter,
    enrollments: Family<Vec<(String, String)>, Counter>,
    devices_registered: Gauge,
    devices_connected: Gauge,
    events_cached: Gauge,
    connections_refused: Counter,
    archive_quarantined: Gauge,
    archive_stray_uploads: Gauge,
    archive_cameras_over_quota: Gauge,
    edge_parked: Gauge,
}

fn registry(m: &Metrics) -> Registry {
    let mut r = Registry::with_prefix("guardian_vm");
    r.register(
        "events_received",
        "Event records received from edges",
        m.events_received.clone(),
    );
    r.register(
        "events_stored",
        "Event records stored for the first time",
        m.events_stored.clone(),
    );
    r.register(
        "telemetry_reports",
        "Telemetry reports received",
        m.telemetry_reports.clone(),
    );
    r.register(
        "enrollments",
        "Enrollment requests by result",
        m.enrollments.clone(),
    );
    r.register(
        "devices_registered",
        "Registered edges",
        m.devices_registered.clone(),
    );
    r.register(
        "devices_connected",
        "Edges connected now",
        m.devices_connected.clone(),
    );
    r.register(
        "events_cached",
        "Event records in the cache",
        m.events_cached.clone(),
    );
    r.register(
        "connections_refused",
        "Connections the gate refused before any protocol (peers not on the allow-list)",
        m.connections_refused.clone(),
    );
    r.register(
        "archive_quarantined_objects",
        "Archived objects S3 did not show at the last check (kept in the index)",
        m.archive_quarantined.clone(),
    );
    r.register(
        "archive_stray_uploads",
        "Multipart uploads that could not be aborted, and uploads with stray parts on the embedded server's disk",
        m.archive_stray_uploads.clone(),
    );
    r.register(
        "archive_cameras_over_quota",
        "Cameras whose last archive did not fit their quota",
        m.archive_cameras_over_quota.clone(),
    );
    r.register(
        "edge_parked",
        "Events, archives and thumbnails the edges hold after a final refusal (latest reports)",
        m.edge_parked.clone(),
    );
    r
}

/// The pieces a [`VmState`] is made of.
pub struct Parts {
    /// `vm.toml`.
    pub config: VmConfig,
    /// The database.
    pub db: Db,
    /// The tenant's signing key (playback tokens; its public half checks enrollment tokens).
    pub tenant_key: SigningKey,
    /// SHA-256 (hex) of the owner's API token.
    pub owner_token_sha256: String,
    /// The vm's own addresses, ending in `/p2p/<vm>`.
    pub relay_base: Vec<Multiaddr>,
    /// The archive's S3 storage.
    pub storage: Arc<Storage>,
    /// The gate's allow-list.
    pub allow: AllowList,
    /// Where time comes from.
    pub clock: SharedClock,
}

/// What the handlers and the API share.
pub struct VmState {
    /// `vm.toml`.
    pub config: VmConfig,
    /// The database.
    pub db: Db,
    tenant_key: VerifyingKey,
    /// Signs playback tokens.
    pub(crate) tenant_signing: SigningKey,
    /// The node, once started (the HTTP clip path opens streams on it).
    pub(crate) node: OnceLock<NodeHandle>,
    /// Who may connect: playback clients are admitted for their token's lifetime.
    pub(crate) allow: AllowList,
    /// The vm's own addresses, ending in `/p2p/<vm>`, the bases of relay addresses.
    pub(crate) relay_base: Vec<Multiaddr>,
    owner_token_sha256: String,
    connected: Mutex<HashSet<String>>,
    pub(crate) metrics: Metrics,
    registry: Registry,
    /// When the vm started (on its clock).
    pub started: Instant,
    /// The archive's S3 storage.
    pub storage: Arc<Storage>,
    /// Where time comes from: every wall-time read and periodic sleep of the vm.
    pub clock: SharedClock,
    /// Woken when a configuration section changes (a new key-slot list), so the pusher
    /// offers it to the connected edges at once.
    pub config_changed: tokio::sync::Notify,
    /// What the alert engine needs of the configuration.
    pub alerts: crate::alerts::engine::Setup,
    /// Woken when notifications are queued, so they leave at once.
    pub notifications_queued: tokio::sync::Notify,
    /// Woken (all waiters) when the mode changes (MQTT publishes it).
    pub mode_changed: tokio::sync::Notify,
    /// The WireGuard overlay, once started with `[wg] enabled` (running, or why not).
    pub(crate) overlay: OnceLock<Arc<crate::overlay::handle::Overlay>>,
}

impl VmState {
    /// The state made of `parts`, started now on its clock.
    pub fn new(parts: Parts) -> Self {
        let metrics = Metrics::default();
        let c = &parts.config;
        let alerts = crate::alerts::engine::Setup {
            rules: c.alerts.rules.clone(),
            tz: c.alerts.tz().unwrap_or(jiff::tz::TimeZone::UTC),
            link_base: if c.alerts.link_base.is_empty() {
                c.public_url()
            } else {
                c.alerts.link_base.clone()
            },
            channels: crate::alerts::channels::outbox_channels(&c.notify, !c.mqtt.url.is_empty()),
        };
        VmState {
            alerts,
            notifications_queued: tokio::sync::Notify::new(),
            mode_changed: tokio::sync::Notify::new(),
            registry: registry(&metrics),
            metrics,
            tenant_key: parts.tenant_key.verifying_key(),
            tenant_signing: parts.tenant_key,
            node: OnceLock::new(),
            allow: parts.allow,
            relay_base: parts.relay_base,
            owner_token_sha256: parts.owner_token_sha256,
            connected: Mutex::new(HashSet::new()),
            db: parts.db,
            config: parts.config,
            started: parts.clock.monotonic(),
            storage: parts.storage,
            clock: parts.clock,
            config_changed: tokio::sync::Notify::new(),
            overlay: OnceLock::new(),
        }
    }

    /// Whether `token` is the owner's API token (compared as hashes, in constant time).
    pub fn owner_token_matches(&self, token: &str) -> bool {
        let given = token_hash(token);
        let (a, b) = (given.as_bytes(), self.owner_token_sha256.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The tenant's public key.
    pub fn tenant_key(&self) -> &VerifyingKey {
        &self.tenant_key
    }

    /// The gate's allow-list.
    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    /// Whether an edge is connected now.
    pub fn is_connected(&self, peer: &str) -> bool {
        self.connected.lock().expect("not poisoned").contains(peer)
    }

    /// Records that `peer` connected (`true`) or lost its last connection (`false`).
    pub fn set_connected(&self, peer: &str, connected: bool) {
        let mut set = self.connected.lock().expect("not poisoned");
        if connected {
            set.insert(peer.to_owned());
        } else {
            set.remove(peer);
        }
    }

    /// Seconds since the vm started, on its clock.
    pub fn uptime_secs(&self) -> u64 {
        self.clock
            .monotonic()
            .saturating_duration_since(self.started)
            .as_secs()
    }

    /// Every registered device and its health, now on the vm's clock.
    pub async fn edge_health(&self) -> Result<Vec<(DeviceRow, EdgeHealth)>, db::DbError> {
        let rows = self
            .db
            .call(|c| {
                db::devices(c)?
                    .into_iter()
                    .map(|d| {
                        let t = db::latest_telemetry(c, &d.peer_id)?;
                        Ok((d, t))
                    })
                    .collect::<Result<Vec<_>, db::DbError>>()
            })
            .await?;
        let now = self.clock.wall_ms();
        Ok(rows
            .into_iter()
            .map(|(d, t)| {
                let h = health::derive(
                    &self.config.telemetry,
                    now,
                    self.is_connected(&d.peer_id),
                    d.last_seen_ms,
                    t.as_ref(),
                );
                (d, h)
            })
            .collect())
    }

    /// The Prometheus text of every metric.
    pub async fn metrics_text(&self) -> Result<String, db::DbError> {
        let (devices, events) = self
            .db
            .call(|c| Ok((db::devices(c)?.len() as i64, db::event_count(c)? as i64)))
            .await?;
        let (quarantined, unaborted, over_quota) = self
            .db
            .call(|c| {
                Ok((
                    db::quarantined_objects(c)?.len() as i64,
                    db::journaled_uploads(c)?
                        .iter()
                        .filter(|u| u.abort_error.is_some())
                        .count() as i64,
                    db::over_quota(c)?.len() as i64,
                ))
            })
            .await?;
        self.metrics.archive_quarantined.set(quarantined);
        self.metrics
            .archive_stray_uploads
            .set(unaborted + self.storage.embedded_stray_parts().uploads as i64);
        self.metrics.archive_cameras_over_quota.set(over_quota);
        let parked: u64 = self
            .edge_health()
            .await?
            .iter()
            .filter_map(|(_, h)| h.parked)
            .map(|p| p.events + p.archive + p.thumbnails)
            .sum();
        self.metrics.edge_parked.set(parked as i64);
        self.metrics.devices_registered.set(devices);
        self.metrics
            .devices_connected
            .set(self.connected.lock().expect("not poisoned").len() as i64);
        self.metrics.events_cached.set(events);
        // The gate counts; the counter catches up with it (it only grows).
        let refused = self.allow.refused_count();
        let shown = self.metrics.connections_refused.get();
        if refused > shown {
            self.metrics.connections_refused.inc_by(refused - shown);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a string");
        Ok(out)
    }

    /// Counts an enrollment request by its result (`accepted`, `refused`).
    pub(crate) fn count_enrollment(&self, result: &str) {
        self.metrics
            .enrollments
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc();
    }
}

/// A state for unit tests: tenant `t`, owner token `owner-token`, an in-memory database, the
/// embedded S3 server in a temporary folder (returned: keep it), a closed allow-list.
#[cfg(test)]
pub(crate) async fn for_tests(clock: SharedClock) -> (tempfile::TempDir, Arc<VmState>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::start(&crate::storage::S3Config::default(), dir.path())
        .await
        .unwrap();
    let state = VmState::new(Parts {
        config: VmConfig::new("t", "127.0.0.1"),
        db: Db::open_in_memory().unwrap(),
        tenant_key: SigningKey::from_bytes(&[9; 32]),
        owner_token_sha256: token_hash("owner-token"),
        relay_base: Vec::new(),
        storage: Arc::new(storage),
        allow: AllowList::closed(),
        clock,
    });
    (dir, Arc::new(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::ManualClock;
    use std::time::Duration;

    const T0: u64 = 1_800_000_000_000;

    #[tokio::test]
    async fn an_edge_is_offline_after_offline_after_secs_of_silence_on_the_clock() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = for_tests(clock.shared()).await;
        state
            .db
            .call(|c| crate::db::tests::enrolled(c, "edge-a", T0))
            .await
            .unwrap();
        state.set_connected("edge-a", true);
        let issues = |h: &[(DeviceRow, EdgeHealth)]| h[0].1.issues.clone();
        let h = state.edge_health().await.unwrap();
        assert!(h[0].1.online);
        assert!(!issues(&h).contains(&health::Issue::Offline));

        // Disconnected and silent: not offline until more than offline_after_secs passed.
        state.set_connected("edge-a", false);
        let after = Duration::from_secs(state.config.telemetry.offline_after_secs);
        clock.advance(after);
        let h = state.edge_health().await.unwrap();
        assert!(!h[0].1.online);
        assert_eq!(h[0].1.silent_for_ms, after.as_millis() as u64);
        assert!(!issues(&h).contains(&health::Issue::Offline), "{h:?}");
        clock.advance(Duration::from_millis(1));
        let h = state.edge_health().await.unwrap();
        assert!(issues(&h).contains(&health::Issue::Offline), "{h:?}");
        assert_eq!(state.uptime_secs(), after.as_secs());
    }

    #[tokio::test]
    async fn owner_tokens_are_compared_as_hashes() {
        let (_dir, state) = for_tests(ManualClock::new(T0).shared()).await;
        assert!(state.owner_token_matches("owner-token"));
        assert!(!state.owner_token_matches("owner-token2"));
        assert!(!state.owner_token_matches(""));
    }

    #[tokio::test]
    async fn metrics_show_the_gate_refusals_and_the_cache() {
        let clock = ManualClock::new(T0);
        let (_dir, state) = for_tests(clock.shared()).await;
        state
            .db
            .call(|c| crate::db::tests::enrolled(c, "edge-a", T0))
            .await
            .unwrap();
        state.set_connected("edge-a", true);
        state.count_enrollment("accepted");
        let text = state.metrics_text().await.unwrap();
        for line in [
            "guardian_vm_connections_refused_total 0",
            "guardian_vm_devices_registered 1",
            "guardian_vm_devices_connected 1",
            "guardian_vm_events_cached 0",
            "guardian_vm_enrollments_total{result=\"accepted\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
