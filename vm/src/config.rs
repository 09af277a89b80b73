//! `vm.toml`: the vm's configuration. Every key but `tenant_id` and `fqdn` is optional; the
//! defaults are written out by `guardian-vm init` and documented in the README.

use std::path::Path;

use anyhow::{Context, Result};
use guardian_node::RelayLimits;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// The tenant this vm serves.
    pub tenant_id: String,
    /// The public name (or IP literal) edges dial.
    pub fqdn: String,
    /// libp2p settings.
    #[serde(default)]
    pub p2p: P2pConfig,
    /// HTTP API settings.
    #[serde(default)]
    pub http: HttpConfig,
    /// Relay limits (sized for clip streams).
    #[serde(default)]
    pub relay: RelayLimits,
    /// Enrollment settings.
    #[serde(default)]
    pub enrollment: EnrollmentConfig,
    /// Telemetry and health settings.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// S3 storage; empty endpoint = the embedded server.
    #[serde(default)]
    pub s3: crate::storage::S3Config,
    /// Archive policy, quota and retention.
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// Remote playback.
    #[serde(default)]
    pub playback: PlaybackConfig,
    /// Alert rules, the time zone their schedules are in, health alerts.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// The MQTT broker (Home Assistant); empty `url`: none.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Webhooks, ntfy and e-mail.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The WireGuard overlay to the edges and the owner's devices.
    #[serde(default)]
    pub wg: WgConfig,
}

/// The WireGuard overlay (`[wg]`, `docs/overlay.md`): a userspace WireGuard device on a TUN
/// interface, whose peers are the enrolled edges (negotiated over `/guardian/wg/1`) and the
/// owner's devices (`POST /api/v1/wg/devices`, `guardian-vm wg device add`). Needs root (or
/// CAP_NET_ADMIN) and `/dev/net/tun`; without them the vm runs on without it and says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WgConfig {
    /// Whether the overlay runs (default false; the compose file and the demo turn it on).
    pub enabled: bool,
    /// The TUN interface's name, 1 to 15 characters (default `guardian0`); it also names the
    /// UAPI socket `/var/run/wireguard/<interface>.sock` that `wg show` reads.
    pub interface: String,
    /// The UDP port WireGuard listens on (default 51820).
    pub listen_port: u16,
    /// The host in the endpoint edges and devices send to; empty (the default) for `fqdn`.
    pub endpoint_host: String,
    /// The overlay's IPv6 ULA /64; empty (the default) for `fdXX:XXXX:XXXX::/64` derived from
    /// the tenant id.
    pub prefix_v6: String,
    /// The overlay's private IPv4 range (default `10.77.0.0/16`).
    pub range_v4: String,
    /// Persistent keepalive the peers are told to use, seconds (default 25; 0: none).
    pub keepalive_secs: u16,
    /// How often an edge offers its key again, seconds (default 60, 5 to 3600).
    pub recheck_secs: u32,
    /// The interface's MTU (default 1420, 1280 to 9000).
    pub mtu: u16,
}

impl Default for WgConfig {
    fn default() -> Self {
        WgConfig {
            enabled: false,
            interface: "guardian0".into(),
            listen_port: 51820,
            endpoint_host: String::new(),
            prefix_v6: String::new(),
            range_v4: guardian_overlay::addressing::DEFAULT_RANGE_V4.into(),
            keepalive_secs: 25,
            recheck_secs: 60,
            mtu: guardian_overlay::device::DEFAULT_MTU,
        }
    }
}

/// What `[wg]` comes to, with the defaults filled in: the overlay's prefixes and the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySettings {
    /// The TUN interface.
    pub interface: String,
    /// The UDP port.
    pub listen_port: u16,
    /// `host:port` (an IPv6 host in brackets).
    pub endpoint: String,
    /// The overlay's prefixes.
    pub prefixes: guardian_overlay::OverlayPrefixes,
    /// Persistent keepalive, seconds.
    pub keepalive_secs: u16,
    /// How often edges offer their key again, seconds.
    pub recheck_secs: u32,
    /// The interface's MTU.
    pub mtu: u16,
}

impl WgConfig {
    /// The settings of the tenant `tenant_id` reached at `fqdn`, or what is wrong with them.
    pub fn settings(&self, tenant_id: &str, fqdn: &str) -> Result<OverlaySettings> {
        let name_ok = (1..=15).contains(&self.interface.len())
            && self
                .interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        anyhow::ensure!(
            name_ok,
            "wg.interface must be 1 to 15 characters of a-z, A-Z, 0-9, '-', '_' and '.', not {:?}",
            self.interface
        );
        anyhow::ensure!(
            self.listen_port != 0,
            "wg.listen_port must be a fixed port (edges and devices send to it)"
        );
        anyhow::ensure!(
            (5..=3600).contains(&self.recheck_secs),
            "wg.recheck_secs must be 5 to 3600"
        );
        anyhow::ensure!(
            (1280..=9000).contains(&self.mtu),
            "wg.mtu must be 1280 to 9000"
        );
        let prefixes =
            guardian_overlay::OverlayPrefixes::new(tenant_id, &self.prefix_v6, &self.range_v4)
                .map_err(|e| anyhow::anyhow!("wg: {e}"))?;
        let host = if self.endpoint_host.trim().is_empty() {
            fqdn.trim()
        } else {
            self.endpoint_host.trim()
        };
        anyhow::ensure!(
            !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('/'),
            "wg.endpoint_host (or fqdn) {host:?} is not a host name or address"
        );
        Ok(OverlaySettings {
            interface: self.interface.clone(),
            listen_port: self.listen_port,
            endpoint: endpoint(host, self.listen_port),
            prefixes,
            keepalive_secs: self.keepalive_secs,
            recheck_secs: self.recheck_secs,
            mtu: self.mtu,
        })
    }
}

/// `host:port`, an IPv6 literal in brackets (as wg-quick's `Endpoint` takes it).
pub fn endpoint(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{bare}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Alerts (`[alerts]`). The rules here seed the vm's database the first time; changes made
/// through the API (`PUT /api/v1/alerts/rules`) are kept there and win.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The household's time zone (IANA, such as `Europe/Berlin`), for schedules.
    pub time_zone: String,
    /// The rules (default: one rule, every camera, a person or a vehicle, when away).
    pub rules: Vec<crate::alerts::rules::Rule>,
    /// The web app's address in notifications' links; empty for `http.public_url`.
    pub link_base: String,
    /// Health alerts (an edge offline, a camera failed or silent, a disk nearly full, ...),
    /// with a recovery notice; sent whatever the mode.
    pub health: bool,
    /// A camera neither streaming nor disabled for this long is alerted, seconds.
    pub camera_silent_secs: u64,
    /// Seconds between health checks.
    pub health_check_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            time_zone: "UTC".into(),
            rules: crate::alerts::rules::default_rules(),
            link_base: String::new(),
            health: true,
            camera_silent_secs: 300,
            health_check_secs: 5,
        }
    }
}

impl AlertsConfig {
    /// The time zone, or why its name is unknown.
    pub fn tz(&self) -> Result<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.time_zone).with_context(|| {
            format!(
                "alerts.time_zone: {:?} is not a known time zone",
                self.time_zone
            )
        })
    }
}

/// The MQTT broker (`[mqtt]`): events and camera state on `guardian/...` in Frigate's layout,
/// Home Assistant discovery, the mode from Home Assistant.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:1883` (or `mqtts://host:8883`); empty: no MQTT.
    pub url: String,
    /// User name, if the broker wants one.
    pub username: String,
    /// Its password (or `password_file`).
    pub password: String,
    /// A file holding the password (wins over `password`).
    pub password_file: String,
    /// Client id; empty for `guardian-<tenant>`.
    pub client_id: String,
    /// The topics' prefix.
    pub topic_prefix: String,
    /// Home Assistant's discovery prefix; empty: no discovery messages.
    pub discovery_prefix: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            password_file: String::new(),
            client_id: String::new(),
            topic_prefix: "guardian".into(),
            discovery_prefix: "homeassistant".into(),
        }
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field(
                "has_password",
                &(!self.password.is_empty() || !self.password_file.is_empty()),
            )
            .field("topic_prefix", &self.topic_prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .finish_non_exhaustive()
    }
}

/// Notification channels (`[notify]`), defined with the channels.
pub use crate::alerts::channels::NotifyConfig;

/// Archive policy and limits (`[archive]` in `vm.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Bytes each camera's bucket may hold (default 10 GiB).
    pub quota_bytes_per_camera: u64,
    /// Days an archived event is kept (default 90).
    pub retention_days: u32,
    /// Categories archived; empty means all.
    pub categories: Vec<String>,
    /// Largest object accepted (default 2 GiB).
    pub max_object_bytes: u64,
    /// Uploads handled at once (each holds one S3 part in memory).
    pub concurrent_uploads: usize,
    /// Seconds between retention sweeps.
    pub retention_sweep_secs: u64,
    /// Seconds between checks of the archive index against S3 (the first at start): objects
    /// S3 does not show are quarantined, and released when it shows them again.
    pub reconcile_secs: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            quota_bytes_per_camera: 10 << 30,
            retention_days: 90,
            categories: Vec::new(),
            max_object_bytes: 2 << 30,
            concurrent_uploads: 4,
            retention_sweep_secs: 3600,
            reconcile_secs: 600,
        }
    }
}

/// Remote playback settings (`[playback]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybackConfig {
    /// How long a playback token is valid, seconds (default 300).
    pub token_secs: u64,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        PlaybackConfig { token_secs: 300 }
    }
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Listen addresses (QUIC and TCP).
    pub listen: Vec<String>,
    /// Addresses announced to edges; empty means derived from `fqdn` and the listen ports.
    pub external: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec![
                "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
                "/ip4/0.0.0.0/tcp/4001".into(),
            ],
            external: Vec::new(),
        }
    }
}

/// HTTP API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API listens. Loopback by default: put a TLS proxy in front to publish it.
    pub listen: String,
    /// The URL owners use (written into install packages); empty means `http://<listen>`.
    pub public_url: String,
    /// Where `/metrics` is served without a token, such as `127.0.0.1:9464`; empty (the
    /// default) serves it on `listen` behind the owner token.
    pub metrics_listen: String,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client (for the
    /// sign-in limit and the logs); empty trusts none.
    pub trusted_proxies: Vec<String>,
    /// Connections open at once (default 256); one more is answered 503.
    pub max_connections: usize,
    /// Connections open at once from one client address (default 32).
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open (default 10).
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's body after its headers (default 10).
    pub body_timeout_secs: u64,
    /// Failed sign-ins one address may make per minute before it is refused (429) for the
    /// rest of the minute (default 20; a request without credentials is not counted).
    pub sign_in_failures_per_minute: u32,
    /// Hours a web app session lasts after signing in (default 12).
    pub session_hours: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            metrics_listen: String::new(),
            trusted_proxies: Vec::new(),
            max_connections: 256,
            max_connections_per_address: 32,
            header_read_timeout_secs: 10,
            body_timeout_secs: 10,
            sign_in_failures_per_minute: 20,
            session_hours: 12,
        }
    }
}

impl HttpConfig {
    /// The trusted proxies' addresses.
    pub fn trusted_proxies(&self) -> Result<Vec<std::net::IpAddr>> {
        self.trusted_proxies
            .iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("http.trusted_proxies: {a:?} is not an IP address"))
            })
            .collect()
    }

    /// The listener's caps and timeouts (each at least 1).
    pub fn limits(&self) -> crate::http::server::Limits {
        crate::http::server::Limits {
            max_connections: self.max_connections.max(1),
            max_per_address: self.max_connections_per_address.max(1),
            header_read_timeout: std::time::Duration::from_secs(
                self.header_read_timeout_secs.max(1),
            ),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_secs.max(1)),
        }
    }
}

/// Enrollment settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentConfig {
    /// How long an install package's enrollment token is valid, hours (default 168 = 7 days).
    pub token_valid_hours: u64,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            token_valid_hours: 168,
        }
    }
}

/// Telemetry and health settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Seconds between an edge's reports (sent to edges at enrollment and in each ack).
    pub interval_secs: u32,
    /// Reports kept per edge; older ones are deleted.
    pub history_per_edge: u32,
    /// An edge not heard from for this long is offline.
    pub offline_after_secs: u64,
    /// Disk use (percent of the data volume) at which an edge's disk is nearly full.
    pub disk_full_percent: u8,
    /// Sealed objects waiting in an edge's archive outbox at which the backlog is high.
    pub backlog_high_objects: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            interval_secs: 30,
            history_per_edge: 1000,
            offline_after_secs: 120,
            disk_full_percent: 90,
            backlog_high_objects: 100,
        }
    }
}

impl VmConfig {
    /// A configuration with every default, for `tenant_id` reached at `fqdn`.
    pub fn new(tenant_id: &str, fqdn: &str) -> Self {
        VmConfig {
            tenant_id: tenant_id.to_owned(),
            fqdn: fqdn.to_owned(),
            p2p: Default::default(),
            http: Default::default(),
            relay: Default::default(),
            enrollment: Default::default(),
            telemetry: Default::default(),
            s3: Default::default(),
            archive: Default::default(),
            playback: Default::default(),
            alerts: Default::default(),
            mqtt: Default::default(),
            notify: Default::default(),
            wg: Default::default(),
        }
    }

    /// Reads `vm.toml`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let c: VmConfig = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        c.alerts.tz()?;
        crate::alerts::rules::validate(&c.alerts.rules)
            .map_err(|e| anyhow::anyhow!("alerts.rules: {e}"))?;
        crate::alerts::channels::validate(&c.notify).map_err(|e| anyhow::anyhow!("notify: {e}"))?;
        c.overlay_settings()?;
        Ok(c)
    }

    /// The file's text, with a header that says where the keys are documented.
    pub fn to_toml(&self) -> String {
        format!(
            "# guardian-vm configuration; every key is documented in README.md (\"vm.toml\").\n{}",
            toml::to_string_pretty(self).expect("serializable")
        )
    }

    /// `[wg]` with its defaults filled in (checked at load, whether the overlay is on or not).
    pub fn overlay_settings(&self) -> Result<OverlaySettings> {
        self.wg.settings(&self.tenant_id, &self.fqdn)
    }

    /// The API URL written into packages.
    pub fn public_url(&self) -> String {
        if self.http.public_url.is_empty() {
            format!("http://{}", self.http.listen)
        } else {
            self.http.public_url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_refused() {
        let c = VmConfig::new("t", "vm.example.org");
        let text = c.to_toml();
        let back: VmConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.telemetry.interval_secs, 30);
        assert_eq!(back.relay.max_circuit_bytes, 1 << 30);
        let minimal: VmConfig = toml::from_str("tenant_id = \"t\"\nfqdn = \"x\"\n").unwrap();
        assert_eq!(minimal.enrollment.token_valid_hours, 168);
        assert_eq!(minimal.playback.token_secs, 300);
        assert!(toml::from_str::<VmConfig>("tenant_id = \"t\"\nfqdn = \"x\"\ntypo = 1\n").is_err());
        assert_eq!(minimal.wg, WgConfig::default());
        assert!(!minimal.wg.enabled);
        assert_eq!(back.wg, WgConfig::default());
    }

    #[test]
    fn overlay_settings_fill_in_the_defaults_and_refuse_bad_values() {
        let mut c = VmConfig::new("t-one", "vm.example.org");
        let s = c.overlay_settings().unwrap();
        assert_eq!(s.endpoint, "vm.example.org:51820");
        assert_eq!(s.interface, "guardian0");
        assert_eq!(
            s.prefixes,
            guardian_overlay::OverlayPrefixes::new("t-one", "", "10.77.0.0/16").unwrap()
        );
        assert_eq!((s.keepalive_secs, s.recheck_secs, s.mtu), (25, 60, 1420));
        c.fqdn = "2001:db8::7".into();
        assert_eq!(
            c.overlay_settings().unwrap().endpoint,
            "[2001:db8::7]:51820"
        );
        c.wg.endpoint_host = "203.0.113.9".into();
        c.wg.listen_port = 4500;
        assert_eq!(c.overlay_settings().unwrap().endpoint, "203.0.113.9:4500");
        c.wg.prefix_v6 = "fd12:3456:789a::/64".into();
        c.wg.range_v4 = "192.168.77.0/24".into();
        let s = c.overlay_settings().unwrap();
        assert_eq!(
            s.prefixes.cidrs(),
            ["fd12:3456:789a::/64", "192.168.77.0/24"]
        );
        let bad_settings: [fn(&mut WgConfig); 9] = [
            |w: &mut WgConfig| w.interface = "a-name-far-too-long".into(),
            |w: &mut WgConfig| w.interface = "".into(),
            |w: &mut WgConfig| w.interface = "bad/name".into(),
            |w: &mut WgConfig| w.listen_port = 0,
            |w: &mut WgConfig| w.recheck_secs = 1,
            |w: &mut WgConfig| w.mtu = 576,
            |w: &mut WgConfig| w.prefix_v6 = "2001:db8::/64".into(),
            |w: &mut WgConfig| w.range_v4 = "8.8.8.0/24".into(),
            |w: &mut WgConfig| w.endpoint_host = "two words".into(),
        ];
        for bad in bad_settings {
            let mut c = VmConfig::new("t", "vm.example.org");
            bad(&mut c.wg);
            assert!(c.overlay_settings().is_err(), "{:?}", c.wg);
        }
    }
}
