//! `edge.toml`: the edge's configuration. Every key is optional; `guardian-edge init` writes
//! the defaults, documented in the README.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use protocols::messages::Category;
use protocols::messages::config::Polygon;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// libp2p settings.
    pub p2p: P2pConfig,
    /// Event outbox settings.
    pub outbox: OutboxConfig,
    /// Telemetry settings.
    pub telemetry: TelemetryConfig,
    /// Archive sending settings and policy.
    pub archive: ArchiveConfig,
    /// The object detector.
    pub detector: DetectorConfig,
    /// Local clip storage and retention.
    pub storage: StorageConfig,
    /// Looking for cameras on the LAN.
    pub discovery: DiscoveryConfig,
    /// The web app and its local API on the LAN.
    pub http: HttpConfig,
    /// The WireGuard overlay to the vm.
    pub wg: WgConfig,
    /// Cameras (`[[cameras]]`), managed with `guardian-edge camera add|remove`.
    pub cameras: Vec<CameraSettings>,
}

/// The owner's web app and a local API served by the edge on its LAN (`[http]`), so the
/// home still works when its internet is down. Off unless `listen` is set. Sign-in: the local
/// admin token `guardian-edge init` prints (`guardian-edge local-token --rotate` makes a new
/// one), or a user the vm synced with their password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The listen address (`"0.0.0.0:8480"`, `"[::]:8480"`); empty (the default) for none.
    pub listen: String,
    /// The source networks allowed to connect (CIDR, `"192.168.1.0/24"`); a connection from
    /// anywhere else is closed before any request is read. Default: loopback (127.0.0.0/8,
    /// ::1), the private networks of RFC 1918 (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16),
    /// link-local (169.254.0.0/16, fe80::/10) and IPv6 unique local addresses (fc00::/7):
    /// the LAN and, later, the WireGuard overlay.
    pub allow: Vec<String>,
    /// Hours a sign-in lasts (1 to 720); default 12.
    pub session_hours: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: String::new(),
            allow: [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "fe80::/10",
                "fc00::/7",
            ]
            .map(String::from)
            .to_vec(),
            session_hours: 12,
        }
    }
}

/// Looking for cameras on the edge's LAN (`[discovery]`): ONVIF WS-Discovery, an RTSP probe
/// of the hosts of the edge's own subnets, and the V4L2 devices. Off unless installed (the
/// ISO and `guardian-edge init --discovery` turn it on): a scan sends packets to every host
/// of the LAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Scan at all (at start, every `interval_secs`, and when the owner asks).
    pub enabled: bool,
    /// Seconds between scans.
    pub interval_secs: u64,
    /// ONVIF WS-Discovery (multicast probe; hellos and byes are listened for).
    pub onvif: bool,
    /// Seconds to wait for probe matches.
    pub onvif_wait_secs: u64,
    /// The RTSP probe of the LAN's hosts.
    pub rtsp: bool,
    /// Ports the RTSP probe tries.
    pub rtsp_ports: Vec<u16>,
    /// Paths a `DESCRIBE` tries on a host that answers RTSP, in order.
    pub rtsp_paths: Vec<String>,
    /// Subnets to probe (`10.0.0.0/24`); empty for those of the edge's own interfaces. Each
    /// must lie inside one of them: the probe never leaves the edge's LAN.
    pub subnets: Vec<String>,
    /// At most this many hosts are probed per subnet (a larger subnet is probed around the
    /// edge's own address).
    pub max_hosts: u32,
    /// Connection attempts per second, at most.
    pub probes_per_sec: u32,
    /// The V4L2 devices (`/dev/video*`) of the edge.
    pub v4l2: bool,
    /// A whole scan's time limit, seconds.
    pub timeout_secs: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            interval_secs: 600,
            onvif: true,
            onvif_wait_secs: 3,
            rtsp: true,
            rtsp_ports: vec![554, 8554],
            rtsp_paths: [
                "/",
                "/cam",
                "/live",
                "/stream1",
                "/h264",
                "/ch0",
                "/11",
                "/Streaming/Channels/101",
                "/cam/realmonitor?channel=1&subtype=0",
                "/live/ch00_0",
                "/videoMain",
                "/axis-media/media.amp",
            ]
            .map(String::from)
            .to_vec(),
            subnets: Vec::new(),
            max_hosts: 256,
            probes_per_sec: 50,
            v4l2: true,
            timeout_secs: 60,
        }
    }
}

/// Archive sending settings, and the policy that decides which camera events are sealed
/// and archived (`archive-file` is always archived: the owner asked for it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Sealed events sent to the vm at once (1-8): one's transfer overlaps the vm's upload of
    /// another.
    pub concurrency: usize,
    /// Archive camera events at all.
    pub enabled: bool,
    /// Categories archived; empty for every category.
    pub categories: Vec<Category>,
    /// Cameras archived; empty for every camera.
    pub cameras: Vec<String>,
    /// Minimum best score of an event, 0-1.
    pub min_score: f32,
    /// Hours of the day (`"22-06"`, `"08-18"`, in `utc_offset_minutes` local time) in which
    /// events are archived; empty for all day.
    pub hours: Vec<String>,
    /// The local time zone's offset from UTC for `hours`, minutes.
    pub utc_offset_minutes: i32,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            concurrency: 2,
            enabled: true,
            categories: Vec::new(),
            cameras: Vec::new(),
            min_score: 0.0,
            hours: Vec::new(),
            utc_offset_minutes: 0,
        }
    }
}

impl ArchiveConfig {
    /// Whether an event of `camera` and `category`, best score `score`, ending at
    /// `at_ms` (Unix ms) is archived: by the camera's own policy (`own`) when it has one,
    /// else by this one.
    pub fn admits(
        &self,
        own: Option<&CameraArchive>,
        camera: &str,
        category: &Category,
        score: f32,
        at_ms: u64,
    ) -> bool {
        let (enabled, categories, min_score, hours) = match own {
            Some(o) => (o.enabled, &o.categories, o.min_score, &o.hours),
            None => {
                if !self.cameras.is_empty() && !self.cameras.iter().any(|c| c == camera) {
                    return false;
                }
                (self.enabled, &self.categories, self.min_score, &self.hours)
            }
        };
        if !enabled
            || score < min_score
            || (!categories.is_empty() && !categories.contains(category))
        {
            return false;
        }
        if hours.is_empty() {
            return true;
        }
        let local_min = (at_ms / 60_000) as i64 + self.utc_offset_minutes as i64;
        let hour = local_min.rem_euclid(24 * 60) as u32 / 60;
        hours
            .iter()
            .filter_map(|h| parse_hours(h))
            .any(|(from, to)| {
                if from <= to {
                    (from..to).contains(&hour)
                } else {
                    hour >= from || hour < to
                }
            })
    }
}

/// A camera's own archive policy (`[cameras.archive]`, set at the vm or by hand): it stands
/// for `[archive]`'s `enabled`, `categories`, `min_score` and `hours` for this camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraArchive {
    /// Archive this camera's events at all.
    pub enabled: bool,
    /// Categories archived; empty for every category.
    pub categories: Vec<Category>,
    /// Minimum best score of an event, 0-1.
    pub min_score: f32,
    /// Hours of the day (`"22-06"`, in `[archive] utc_offset_minutes` local time).
    pub hours: Vec<String>,
}

impl Default for CameraArchive {
    fn default() -> Self {
        CameraArchive {
            enabled: true,
            categories: Vec::new(),
            min_score: 0.0,
            hours: Vec::new(),
        }
    }
}

/// An ONVIF camera (`[cameras.onvif]`): the edge asks its device and media services for
/// the stream URIs each time it connects, so the camera's URLs may change.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnvifSettings {
    /// The device service URL (`http://host[:port]/onvif/device_service`).
    pub xaddr: String,
    /// The ONVIF user (also used for the RTSP streams).
    pub username: String,
    /// Its password.
    pub password: String,
    /// The profile recorded; empty for the camera's largest.
    pub profile: String,
    /// The profile decoded for detection; empty for none.
    pub substream_profile: String,
}

impl std::fmt::Debug for OnvifSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnvifSettings")
            .field("xaddr", &self.xaddr)
            .field("username", &self.username)
            .field("has_password", &!self.password.is_empty())
            .field("profile", &self.profile)
            .field("substream_profile", &self.substream_profile)
            .finish()
    }
}

use protocols::messages::config::parse_hours;

/// The object detector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// The model: `nanodet`, `centernet` or `movenet` (set-up makes them), or the path of an IR
    /// (`.xml`, with `.bin` and `model.json` beside it). Empty: `GUARDIAN_MODEL`, else the
    /// default model (NanoDet), found as `detect::locate` says.
    pub model: String,
    /// OpenVINO's C library (`libopenvino_c.so...`) or its folder. Empty: the environment
    /// variable `GUARDIAN_OPENVINO_LIB`, else the system's search path.
    pub openvino_lib: String,
    /// OpenVINO device.
    pub device: String,
    /// Inference requests run at once (parallel inference threads); 0 for one per two cores.
    pub infer_requests: usize,
    /// Detections below this score are dropped by the detector, 0-1 (below every camera's
    /// `min_score`).
    pub min_score: f32,
    /// Non-maximum suppression IoU.
    pub nms_iou: f32,
    /// The stronger model that takes a second look at each event's object before an alarm
    /// rule fires (cameras' `verify`): a name as `model` takes (`centernet`, the default) or
    /// an IR's path; `off` for none. Used only when found and not the model itself.
    pub verify_model: String,
    /// The second look confirms the object when the stronger model finds its category there
    /// at this score at least, 0-1. Low on purpose: a missed alarm costs more than a false one,
    /// and CenterNet scores some people in plain view at 0.16-0.25 (`make bench-recall`).
    pub verify_min_score: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            model: String::new(),
            openvino_lib: String::new(),
            device: "CPU".into(),
            infer_requests: 0,
            min_score: 0.25,
            nms_iou: 0.5,
            verify_model: "centernet".into(),
            verify_min_score: 0.15,
        }
    }
}

/// Local clip storage and retention (oldest first; a clip still waiting in the archive
/// outbox is never deleted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep clips this many days; 0 for no limit by age.
    pub retention_days: u32,
    /// At most this many MiB of clips and snapshots; 0 for no limit by size.
    pub budget_mib: u64,
    /// Keep at least this percentage of the data volume free.
    pub min_free_percent: u8,
    /// Seconds between retention sweeps.
    pub sweep_secs: u64,
    /// Keep only sealed objects on disk (the default): a stolen edge holds nothing it can
    /// open. `false` also keeps plain `clip.mp4` and `snapshot.jpg` beside them, for owners
    /// who want a local player.
    pub sealed_at_rest: bool,
    /// Where the per-event keys of working files live: a memory-backed folder, so no key
    /// outlives a power cut. Empty: `/run/private-ai-guardian/keys`, else
    /// `$XDG_RUNTIME_DIR/private-ai-guardian/keys`.
    pub key_dir: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            retention_days: 30,
            budget_mib: 0,
            min_free_percent: 5,
            sweep_secs: 60,
            sealed_at_rest: true,
            key_dir: String::new(),
        }
    }
}

/// One camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraSettings {
    /// Id: 1-48 of a-z, 0-9 and `-`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Main stream, recorded: `rtsp://...`, `file:///path.mp4`, `v4l2:///dev/video0`
    /// (MJPEG or raw, encoded to H.264) or `test://` (a test pattern, for trying things out).
    /// Empty for an ONVIF camera (`[cameras.onvif]`).
    pub url: String,
    /// An ONVIF camera: its device service, user and profiles, instead of `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onvif: Option<OnvifSettings>,
    /// This camera's own archive policy; absent for `[archive]`'s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<CameraArchive>,
    /// Optional lower-resolution stream for detection while the main one is recorded.
    pub substream: Option<String>,
    /// RTSP transport: `tcp` or `udp`.
    pub transport: String,
    /// Whether the camera runs.
    pub enabled: bool,
    /// Frames per second given to detection.
    pub detect_fps: u32,
    /// Detection frame width (a multiple of 4).
    pub detect_width: u32,
    /// Detection frame height.
    pub detect_height: u32,
    /// Zones where detections count (an object's foot point must be inside one); empty for
    /// the whole frame. Points in thousandths of width and height.
    pub zones: Vec<Polygon>,
    /// Areas ignored entirely (same coordinates).
    pub masks: Vec<Polygon>,
    /// Categories that open an event.
    pub categories: Vec<Category>,
    /// A detection below this score is not tracked, 0-1 (the per-frame floor).
    pub min_score: f32,
    /// A track's score (the median of its recent detections) must reach this to open an
    /// event, 0-1.
    pub threshold: f32,
    /// Per-category `min_score` and `threshold` (`[cameras.filters.person]`, keys are
    /// category names: person, car, ...); unset keys take the camera's.
    pub filters: BTreeMap<String, ObjectFilter>,
    /// Seconds between looks at the whole frame when nothing moves (a person standing still
    /// is not lost; a person already there at start is found); 0 for motion only.
    pub full_frame_secs: u32,
    /// Seconds recorded before the first detection.
    pub pre_roll_secs: u32,
    /// Seconds recorded after the last detection.
    pub post_roll_secs: u32,
    /// Longest event, seconds; a longer one is split.
    pub max_event_secs: u32,
    /// Seconds without video after which the pipeline is rebuilt.
    pub watchdog_secs: u32,
    /// A second look at each event's object by `detector.verify_model` before an alarm rule
    /// fires (where that model is present); its verdict travels with the event.
    pub verify: bool,
}

impl Default for CameraSettings {
    fn default() -> Self {
        CameraSettings {
            id: String::new(),
            name: String::new(),
            url: String::new(),
            onvif: None,
            archive: None,
            substream: None,
            transport: "tcp".into(),
            enabled: true,
            detect_fps: 5,
            detect_width: 640,
            detect_height: 360,
            zones: Vec::new(),
            masks: Vec::new(),
            categories: Category::defaults(),
            min_score: 0.3,
            threshold: 0.5,
            filters: BTreeMap::new(),
            full_frame_secs: 5,
            pre_roll_secs: 5,
            post_roll_secs: 5,
            max_event_secs: 300,
            watchdog_secs: 10,
            verify: true,
        }
    }
}

impl CameraSettings {
    /// Checks one camera's values; the message names the camera and the field.
    pub fn validate(&self) -> Result<()> {
        let id = &self.id;
        anyhow::ensure!(
            protocols::messages::valid_id(id),
            "camera id {id:?} must be 1 to 48 characters of a-z, 0-9 and -"
        );
        match &self.onvif {
            Some(o) => {
                anyhow::ensure!(
                    self.url.is_empty() && self.substream.is_none(),
                    "camera {id}: an ONVIF camera has no url or substream (see [cameras.onvif])"
                );
                anyhow::ensure!(
                    (o.xaddr.starts_with("http://") || o.xaddr.starts_with("https://"))
                        && protocols::credential::host(&o.xaddr).is_some(),
                    "camera {id}: onvif.xaddr must be the camera's http:// device service URL"
                );
            }
            None => anyhow::ensure!(
                ["rtsp://", "rtsps://", "file://", "v4l2://", "test://"]
                    .iter()
                    .any(|p| self.url.starts_with(p)),
                "camera {id}: url must start with rtsp://, file://, v4l2:// or test://"
            ),
        }
        if let Some(a) = &self.archive {
            anyhow::ensure!(
                (0.0..=1.0).contains(&a.min_score)
                    && a.hours.iter().all(|h| parse_hours(h).is_some()),
                "camera {id}: archive.min_score must be 0 to 1 and archive.hours ranges \"HH-HH\""
            );
        }
        anyhow::ensure!(
            self.transport == "tcp" || self.transport == "udp",
            "camera {id}: transport must be tcp or udp"
        );
        anyhow::ensure!(
            (1..=30).contains(&self.detect_fps),
            "camera {id}: detect_fps must be 1 to 30"
        );
        anyhow::ensure!(
            self.detect_width.is_multiple_of(4) && (64..=1920).contains(&self.detect_width),
            "camera {id}: detect_width must be a multiple of 4 from 64 to 1920"
        );
        anyhow::ensure!(
            (64..=1080).contains(&self.detect_height),
            "camera {id}: detect_height must be 64 to 1080"
        );
        for (what, f) in std::iter::once((
            "",
            &ObjectFilter {
                min_score: Some(self.min_score),
                threshold: Some(self.threshold),
            },
        ))
        .chain(self.filters.iter().map(|(k, f)| (k.as_str(), f)))
        {
            let at = if what.is_empty() {
                String::new()
            } else {
                format!("filters.{what}.")
            };
            for (name, v) in [("min_score", f.min_score), ("threshold", f.threshold)] {
                anyhow::ensure!(
                    v.is_none_or(|v| (0.0..=1.0).contains(&v)),
                    "camera {id}: {at}{name} must be 0 to 1"
                );
            }
        }
        anyhow::ensure!(
            self.full_frame_secs <= 3600,
            "camera {id}: full_frame_secs must be at most 3600"
        );
        anyhow::ensure!(
            self.pre_roll_secs <= 60,
            "camera {id}: pre_roll_secs must be at most 60"
        );
        anyhow::ensure!(
            self.post_roll_secs <= 600,
            "camera {id}: post_roll_secs must be at most 600"
        );
        anyhow::ensure!(
            self.max_event_secs >= 10,
            "camera {id}: max_event_secs must be at least 10"
        );
        anyhow::ensure!(
            self.watchdog_secs >= 2,
            "camera {id}: watchdog_secs must be at least 2"
        );
        for p in self.zones.iter().chain(&self.masks) {
            anyhow::ensure!(
                p.points.len() >= 3 && p.points.iter().all(|&(x, y)| x <= 1000 && y <= 1000),
                "camera {id}: a zone or mask needs at least 3 points, coordinates 0 to 1000"
            );
        }
        Ok(())
    }

    /// The per-frame floor for `category`.
    pub fn min_score_for(&self, category: &Category) -> f32 {
        self.filters
            .get(category.as_str())
            .and_then(|f| f.min_score)
            .unwrap_or(self.min_score)
    }

    /// The track threshold that opens an event of `category`.
    pub fn threshold_for(&self, category: &Category) -> f32 {
        self.filters
            .get(category.as_str())
            .and_then(|f| f.threshold)
            .unwrap_or(self.threshold)
    }

    /// The names of the named zones a point (fractions of the frame) is in.
    pub fn zones_at(&self, x: f32, y: f32) -> impl Iterator<Item = &str> {
        let (x, y) = (x * 1000.0, y * 1000.0);
        self.zones
            .iter()
            .filter(move |z| !z.name.is_empty() && inside(z, x, y))
            .map(|z| z.name.as_str())
    }

    /// Whether a point (fractions of the frame) counts: inside a zone (or no zones) and in no
    /// mask.
    pub fn counts_at(&self, x: f32, y: f32) -> bool {
        let (x, y) = (x * 1000.0, y * 1000.0);
        (self.zones.is_empty() || self.zones.iter().any(|z| inside(z, x, y)))
            && !self.masks.iter().any(|m| inside(m, x, y))
    }
}

/// A category's own scores (`[cameras.filters.<category>]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectFilter {
    /// Per-frame floor; unset for the camera's `min_score`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
    /// Track threshold; unset for the camera's `threshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

/// A network in CIDR form (`10.0.0.0/8`, `fe80::/10`; an address alone is a single host):
/// its address and prefix length.
pub fn parse_network(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<std::net::IpAddr>().ok()?, Some(l)),
        None => (s.parse::<std::net::IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
            l.parse::<u8>().ok().filter(|n| *n <= max)?
        }
        Some(_) => return None,
        None => max,
    };
    Some((addr, len))
}

/// Even-odd point in polygon.
fn inside(poly: &Polygon, x: f32, y: f32) -> bool {
    let pts = &poly.points;
    let mut odd = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let (xi, yi) = (pts[i].0 as f32, pts[i].1 as f32);
        let (xj, yj) = (pts[j].0 as f32, pts[j].1 as f32);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            odd = !odd;
        }
        j = i;
    }
    odd
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Listen addresses; port 0 lets the system choose.
    pub listen: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec![
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
                "/ip4/0.0.0.0/tcp/0".into(),
            ],
        }
    }
}

/// Event outbox settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Events per batch (at most 256).
    pub batch_size: u32,
    /// Milliseconds between checks of the outboxes (a failed send waits its backoff too).
    pub poll_millis: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 64,
            poll_millis: 500,
        }
    }
}

/// The WireGuard overlay to the vm (`[wg]`, `docs/overlay.md`): negotiated over libp2p once
/// enrolled, when the vm has it on. Needs root (or CAP_NET_ADMIN) and `/dev/net/tun`;
/// without them the edge runs on without the overlay and says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WgConfig {
    /// Whether to ask the vm for a tunnel; default true.
    pub enabled: bool,
    /// The TUN interface's name (at most 15 characters); default `guardian0`.
    pub interface: String,
    /// The local API and web app's port on the overlay addresses (the vm and the owner's
    /// devices reach it there, with the edge's own sign-in); 0 for none; default 7080.
    pub api_port: u16,
    /// Seconds without an answer to the UDP probes before the tunnel moves to the libp2p
    /// stream (2 to 120); default 10.
    pub udp_timeout_secs: u32,
    /// Hours between key rotations (1 to 8760); default 168 (a week).
    pub rotate_hours: u32,
}

impl Default for WgConfig {
    fn default() -> Self {
        WgConfig {
            enabled: true,
            interface: "guardian0".into(),
            api_port: 7080,
            udp_timeout_secs: 10,
            rotate_hours: 168,
        }
    }
}

/// Telemetry settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Seconds between reports until the vm asks for another interval.
    pub interval_secs: u32,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { interval_secs: 30 }
    }
}

impl EdgeConfig {
    /// Reads `edge.toml`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let c: EdgeConfig = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        anyhow::ensure!(
            (1..=256).contains(&c.outbox.batch_size),
            "outbox.batch_size must be 1 to 256"
        );
        anyhow::ensure!(
            (1..=720).contains(&c.http.session_hours),
            "http.session_hours must be 1 to 720"
        );
        if !c.http.listen.is_empty() {
            c.http.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                anyhow::anyhow!("http.listen must be an address and port, such as \"0.0.0.0:8480\"")
            })?;
        }
        anyhow::ensure!(
            (1..=15).contains(&c.wg.interface.len()),
            "wg.interface must be 1 to 15 characters"
        );
        anyhow::ensure!(
            (2..=120).contains(&c.wg.udp_timeout_secs),
            "wg.udp_timeout_secs must be 2 to 120"
        );
        anyhow::ensure!(
            (1..=8760).contains(&c.wg.rotate_hours),
            "wg.rotate_hours must be 1 to 8760"
        );
        for a in &c.http.allow {
            parse_network(a).ok_or_else(|| {
                anyhow::anyhow!("http.allow: {a:?} is not a network such as \"192.168.1.0/24\"")
            })?;
        }
        let mut ids = std::collections::HashSet::new();
        for cam in &c.cameras {
            cam.validate()?;
            anyhow::ensure!(ids.insert(&cam.id), "camera id {:?} appears twice", cam.id);
        }
        Ok(c)
    }

    /// Writes the file atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(self.to_toml().as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# guardian-edge configuration; every key is documented in README.md (\"edge.toml\").\n{}",
            toml::to_string_pretty(self).expect("serializable")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_a_camera_validates() {
        let mut c = EdgeConfig::default();
        c.cameras.push(CameraSettings {
            id: "front-door".into(),
            url: "rtsp://10.0.0.2/stream".into(),
            zones: vec![Polygon {
                name: String::new(),
                points: vec![(0, 500), (1000, 500), (1000, 1000), (0, 1000)],
            }],
            ..Default::default()
        });
        let text = c.to_toml();
        let back: EdgeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.cameras, c.cameras);
        back.cameras[0].validate().unwrap();
        let bad = CameraSettings {
            id: "x".into(),
            url: "http://nope".into(),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("url must start")
        );
    }

    #[test]
    fn per_category_filters_override_the_camera() {
        let text = r#"
            [[cameras]]
            id = "drive"
            url = "rtsp://10.0.0.2/s"
            threshold = 0.6
            [cameras.filters.car]
            threshold = 0.75
            min_score = 0.4
            [cameras.filters.person]
            min_score = 0.25
        "#;
        let c: EdgeConfig = toml::from_str(text).unwrap();
        let cam = &c.cameras[0];
        cam.validate().unwrap();
        assert_eq!(cam.threshold_for(&Category::Car), 0.75);
        assert_eq!(cam.min_score_for(&Category::Car), 0.4);
        assert_eq!(cam.threshold_for(&Category::Person), 0.6);
        assert_eq!(cam.min_score_for(&Category::Person), 0.25);
        assert_eq!(
            cam.min_score_for(&Category::Truck),
            0.3,
            "the camera's default"
        );
        let back: EdgeConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back.cameras, c.cameras);
        let mut bad = cam.clone();
        bad.filters.get_mut("car").unwrap().threshold = Some(1.5);
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("filters.car.threshold must be 0 to 1"), "{e}");
    }

    #[test]
    fn zones_and_masks() {
        let cam = CameraSettings {
            zones: vec![Polygon {
                name: String::new(),
                points: vec![(0, 500), (1000, 500), (1000, 1000), (0, 1000)],
            }],
            masks: vec![Polygon {
                name: String::new(),
                points: vec![(0, 500), (200, 500), (200, 1000), (0, 1000)],
            }],
            ..Default::default()
        };
        assert!(cam.counts_at(0.5, 0.8), "in the zone");
        assert_eq!(cam.zones_at(0.5, 0.8).count(), 0, "the zone has no name");
        let named = CameraSettings {
            zones: vec![Polygon {
                name: "steps".into(),
                points: vec![(0, 500), (1000, 500), (1000, 1000), (0, 1000)],
            }],
            ..Default::default()
        };
        assert_eq!(named.zones_at(0.5, 0.8).collect::<Vec<_>>(), ["steps"]);
        assert_eq!(named.zones_at(0.5, 0.2).count(), 0);
        assert!(!cam.counts_at(0.5, 0.2), "above the zone");
        assert!(!cam.counts_at(0.1, 0.8), "in the mask");
    }

    #[test]
    fn archive_policy() {
        let p = ArchiveConfig {
            categories: vec![Category::Person],
            min_score: 0.6,
            hours: vec!["22-06".into()],
            utc_offset_minutes: 60,
            ..Default::default()
        };
        let at = |h: u64| h * 3_600_000; // Unix epoch day, UTC hour h
        assert!(
            p.admits(None, "c", &Category::Person, 0.7, at(22)),
            "23:00 local"
        );
        assert!(
            p.admits(None, "c", &Category::Person, 0.7, at(4)),
            "05:00 local"
        );
        assert!(
            !p.admits(None, "c", &Category::Person, 0.7, at(5)),
            "06:00 local"
        );
        assert!(
            !p.admits(None, "c", &Category::Person, 0.5, at(22)),
            "score"
        );
        assert!(
            !p.admits(None, "c", &Category::Car, 0.9, at(22)),
            "category"
        );
        assert!(ArchiveConfig::default().admits(None, "c", &Category::Car, 0.1, at(12)));
        // A camera's own policy stands for the edge's, in the edge's time zone.
        let own = CameraArchive {
            categories: vec![Category::Car],
            hours: vec!["08-18".into()],
            ..Default::default()
        };
        assert!(p.admits(Some(&own), "c", &Category::Car, 0.1, at(12)));
        assert!(!p.admits(Some(&own), "c", &Category::Person, 0.9, at(12)));
        assert!(
            !p.admits(Some(&own), "c", &Category::Car, 0.9, at(17)),
            "18:00 local"
        );
        let off = CameraArchive {
            enabled: false,
            ..Default::default()
        };
        assert!(!ArchiveConfig::default().admits(Some(&off), "c", &Category::Car, 0.9, at(12)));
        let only_other = ArchiveConfig {
            cameras: vec!["other".into()],
            ..Default::default()
        };
        assert!(!only_other.admits(None, "c", &Category::Car, 0.9, at(12)));
        assert!(only_other.admits(
            Some(&CameraArchive::default()),
            "c",
            &Category::Car,
            0.9,
            at(12)
        ));
    }
}
