//! `/guardian/config/1`: configuration owned by the vm, pushed to an edge as versioned
//! sections.
//!
//! ```text
//! vm → edge  ConfigPush   the sections, each at its revision
//! edge → vm  ConfigAck    per section: Applied(revision) | Refused(revision, reason, applied)
//! ```
//!
//! The vm pushes when an edge connects, when a section changes, and again later while an
//! edge has not acknowledged the latest revision. Each section has its own revision and ack,
//! so an edge that refuses one keeps running the others. The key-slot section's revision is
//! its list's version, and its payload is the list as the owner signed it: the edge checks
//! the signature itself ([`crate::key_slots::accept`]); the vm cannot make one.
//! The camera section's revision is the vm's per-edge camera revision; its payload holds
//! every camera of the edge, passwords sealed to the edge ([`SealedCredential`]).
//! The users section's revision is the vm's user revision; its payload is every user of the
//! household who may sign in to the edge's LAN web app, with the Argon2id hash of their
//! password (never the password), their role and their cameras ([`UsersSection`]).

use serde::{Deserialize, Serialize};

use super::Category;
use crate::codec::WireMessage;
use crate::key_slots::KeySlotList;
use crate::signed::Signed;

/// One camera's configuration as the vm owns it: what the edge needs to run it, with the
/// password sealed to the edge ([`crate::credential`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraConfig {
    /// Id, see [`super::valid_id`].
    pub id: String,
    /// Human name.
    pub name: String,
    /// Main stream (recorded), without user information: `rtsp://`, `file://`,
    /// `v4l2:///dev/videoN` or `test://`.
    pub url: String,
    /// Optional substream used for detection while the main stream is recorded (without
    /// user information; the main stream's credential is used for it).
    pub substream_url: Option<String>,
    /// RTSP transport, `tcp` or `udp`.
    pub transport: String,
    /// The user name and the password sealed to the edge, if the camera needs them.
    pub credential: Option<SealedCredential>,
    /// Whether the camera runs.
    pub enabled: bool,
    /// Detection.
    pub detect: DetectSettings,
    /// Recording around an event.
    pub record: RecordSettings,
    /// An ONVIF camera: the edge asks its device and media services for the stream URIs of
    /// these profiles (then `url` is empty and the credential is the ONVIF user's, bound to
    /// the xaddr's host). Absent from older messages.
    #[serde(default)]
    pub onvif: Option<OnvifSource>,
    /// Which of this camera's events are archived; `None` for the edge's `[archive]` policy.
    #[serde(default)]
    pub archive: Option<ArchivePolicy>,
}

/// An ONVIF camera's device service and the profiles to stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnvifSource {
    /// The device service URL (`http://host[:port]/onvif/device_service`), without user
    /// information.
    pub xaddr: String,
    /// The profile recorded; `None` for the camera's largest.
    pub profile: Option<String>,
    /// The profile used for detection; `None` for none (the main stream is decoded).
    pub substream_profile: Option<String>,
}

/// A camera's own archive policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivePolicy {
    /// Archive this camera's events at all.
    pub enabled: bool,
    /// Categories archived; empty for every category.
    pub categories: Vec<Category>,
    /// Minimum best score, thousandths.
    pub min_score_milli: u16,
    /// Hours of the day (`"22-06"`, the edge's local time) in which events are archived;
    /// empty for all day.
    pub hours: Vec<String>,
}

/// `"HH-HH"` → (from, to), hours 0 to 24.
pub fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= 24 && b <= 24).then_some((a, b))
}

/// The most zones (or masks) a camera has.
pub const MAX_POLYGONS: usize = 32;
/// The most points a zone or mask has.
pub const MAX_POINTS: usize = 64;

impl CameraConfig {
    /// Checks its values; the message names the field, for a 400 answer or a refusal.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        let fail = |m: String| Err(format!("camera {id}: {m}"));
        if !super::valid_id(id) {
            return Err(format!(
                "camera id {id:?} must be 1 to 48 characters of a-z, 0-9 and -"
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return fail("name must be 1 to 100 characters".into());
        }
        let scheme_ok = |u: &str| {
            ["rtsp://", "rtsps://", "file://", "v4l2://", "test://"]
                .iter()
                .any(|p| u.starts_with(p))
                && u.len() <= 2048
                && !u.chars().any(char::is_control)
        };
        let token_ok = |t: &Option<String>| {
            t.as_deref().is_none_or(|t| {
                !t.is_empty() && t.len() <= 64 && t.chars().all(|c| c.is_ascii_graphic())
            })
        };
        match &self.onvif {
            Some(o) => {
                if !self.url.is_empty() || self.substream_url.is_some() {
                    return fail(
                        "give source.url or source.onvif, not both (the substream of an ONVIF \
                         camera is source.onvif.substream_profile)"
                            .into(),
                    );
                }
                let http = o.xaddr.starts_with("http://") || o.xaddr.starts_with("https://");
                if !http
                    || o.xaddr.len() > 2048
                    || o.xaddr.chars().any(char::is_control)
                    || crate::credential::host(&o.xaddr).is_none()
                {
                    return fail(
                        "source.onvif.xaddr must be the camera's http:// device service URL".into(),
                    );
                }
                if crate::credential::split_userinfo(&o.xaddr)
                    .username
                    .is_some()
                {
                    return fail(
                        "source.onvif.xaddr carries no user name (see source.onvif.username)"
                            .into(),
                    );
                }
                if !token_ok(&o.profile) || !token_ok(&o.substream_profile) {
                    return fail(
                        "source.onvif.profile and substream_profile are profile tokens of 1 to \
                         64 printable characters"
                            .into(),
                    );
                }
            }
            None if !scheme_ok(&self.url) => {
                return fail(
                    "source.url must start with rtsp://, rtsps://, file://, v4l2:// or test://"
                        .into(),
                );
            }
            None => {}
        }
        if self.substream_url.as_deref().is_some_and(|u| !scheme_ok(u)) {
            return fail(
                "substream must start with rtsp://, rtsps://, file://, v4l2:// or test://".into(),
            );
        }
        if let Some(a) = &self.archive {
            if a.min_score_milli > 1000 {
                return fail("archive.min_score must be 0 to 1".into());
            }
            if a.hours.len() > 24 || a.hours.iter().any(|h| parse_hours(h).is_none()) {
                return fail("archive.hours are ranges \"HH-HH\" of hours 0 to 24".into());
            }
        }
        for u in std::iter::once(&self.url).chain(&self.substream_url) {
            if crate::credential::split_userinfo(u).username.is_some() {
                return fail(
                    "a URL here carries no user name or password (see source.username)".into(),
                );
            }
        }
        if self.transport != "tcp" && self.transport != "udp" {
            return fail("transport must be tcp or udp".into());
        }
        if let Some(c) = &self.credential {
            if c.username.is_empty() || c.username.len() > 128 {
                return fail("source.username must be 1 to 128 characters".into());
            }
            if c.password_sealed
                .as_deref()
                .is_some_and(|p| p.len() > crate::credential::MAX_SEALED)
            {
                return fail("source.password_sealed is too long".into());
            }
        }
        let d = &self.detect;
        if d.min_score_milli > 1000 || d.threshold_milli > 1000 {
            return fail("detect.min_score and detect.threshold must be 0 to 1".into());
        }
        if !(1..=30).contains(&d.fps) {
            return fail("detect.fps must be 1 to 30".into());
        }
        if !d.width.is_multiple_of(4) || !(64..=1920).contains(&d.width) {
            return fail("detect.width must be a multiple of 4 from 64 to 1920".into());
        }
        if !(64..=1080).contains(&d.height) {
            return fail("detect.height must be 64 to 1080".into());
        }
        for (what, polys) in [("zones", &d.zones), ("masks", &d.masks)] {
            if polys.len() > MAX_POLYGONS {
                return fail(format!("detect.{what}: at most {MAX_POLYGONS}"));
            }
            for p in polys.iter() {
                if p.points.len() < 3
                    || p.points.len() > MAX_POINTS
                    || p.points.iter().any(|&(x, y)| x > 1000 || y > 1000)
                {
                    return fail(format!(
                        "detect.{what}: each needs 3 to {MAX_POINTS} points, coordinates 0 to 1000"
                    ));
                }
                if p.name.chars().count() > 64 {
                    return fail(format!("detect.{what}: a name is at most 64 characters"));
                }
            }
        }
        if self.record.pre_roll_secs > 60 {
            return fail("record.pre_roll_secs must be at most 60".into());
        }
        if self.record.post_roll_secs > 600 {
            return fail("record.post_roll_secs must be at most 600".into());
        }
        Ok(())
    }
}

/// A camera's user name and its password sealed to the edge (base64 of an age file whose
/// plaintext binds it to the camera and host, [`crate::credential::seal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCredential {
    /// The user name (not secret).
    pub username: String,
    /// The sealed password; `None` for a user name without a password.
    pub password_sealed: Option<String>,
}

/// What a camera detects, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectSettings {
    /// Categories that open an event.
    pub categories: Vec<Category>,
    /// Per-frame floor, thousandths.
    pub min_score_milli: u16,
    /// A track's score that opens an event, thousandths.
    pub threshold_milli: u16,
    /// Detection frames per second.
    pub fps: u8,
    /// Detection frame width, pixels.
    pub width: u16,
    /// Detection frame height, pixels.
    pub height: u16,
    /// Zones where detections count (empty: the whole frame).
    pub zones: Vec<Polygon>,
    /// Areas ignored entirely.
    pub masks: Vec<Polygon>,
    /// A second look by the edge's stronger model before an alarm rule fires (where that
    /// model is present). Absent in older messages: on.
    #[serde(default = "yes")]
    pub verify: bool,
}

fn yes() -> bool {
    true
}

/// Recording around an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSettings {
    /// Seconds recorded before the first detection.
    pub pre_roll_secs: u16,
    /// Seconds recorded after the last detection.
    pub post_roll_secs: u16,
}

/// Every camera of one edge at one revision of the vm's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraSet {
    /// The revision (per edge, from 1, one sequence for every change).
    pub revision: u64,
    /// The cameras.
    pub cameras: Vec<CameraConfig>,
}

/// A polygon, points in thousandths of the frame's width and height, with an optional name
/// (a zone's name, such as `driveway`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polygon {
    /// Its name; empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Vertices in order.
    pub points: Vec<(u16, u16)>,
}

/// A user's role in the web app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and changes everything.
    Admin,
    /// Sees its cameras' events, clips and state; changes nothing (but marking reviewed).
    Viewer,
}

impl Role {
    /// The name as stored and shown (`admin`, `viewer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// From [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// One user who may sign in to the edge's LAN web app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUser {
    /// The user name (see [`valid_user_name`]).
    pub name: String,
    /// The Argon2id hash of the password, a PHC string (`$argon2id$v=19$m=...`).
    pub password_phc: String,
    /// Admin or viewer.
    pub role: Role,
    /// The cameras the user sees; `None` for every camera.
    pub cameras: Option<Vec<String>>,
}

/// Every user of the household at one revision of the vm's user list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersSection {
    /// The revision (from 1, one sequence for every change).
    pub revision: u64,
    /// The users.
    pub users: Vec<LocalUser>,
}

/// The most users a household has.
pub const MAX_USERS: usize = 256;
/// The longest PHC string taken.
pub const MAX_PHC: usize = 512;

/// A user name: 1 to 64 characters of a-z, A-Z, 0-9, `.`, `_`, `-` and `@`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl UsersSection {
    /// Checks its form (names, hashes' form and length, camera ids, no name twice); the
    /// message names the user and the field. The hash itself is parsed where it is used.
    pub fn validate(&self) -> Result<(), String> {
        if self.users.len() > MAX_USERS {
            return Err(format!("at most {MAX_USERS} users"));
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            if !valid_user_name(&u.name) {
                let n: String = u.name.chars().take(64).collect();
                return Err(format!(
                    "user name {n:?} must be 1 to 64 characters of a-z, A-Z, 0-9, ., _, - and @"
                ));
            }
            if !seen.insert(u.name.as_str()) {
                return Err(format!("user {} appears twice", u.name));
            }
            if !u.password_phc.starts_with("$argon2id$") || u.password_phc.len() > MAX_PHC {
                return Err(format!(
                    "user {}: password_phc must be an Argon2id PHC string of at most {MAX_PHC} \
                     characters",
                    u.name
                ));
            }
            if let Some(cams) = &u.cameras
                && (cams.len() > 1024 || cams.iter().any(|c| !super::valid_id(c)))
            {
                return Err(format!("user {}: cameras must be camera ids", u.name));
            }
        }
        Ok(())
    }
}

/// One section of configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// The household's key slots, as the owner signed them.
    KeySlots(Signed<KeySlotList>),
    /// The edge's cameras.
    Cameras(CameraSet),
    /// The users who may sign in to the edge's LAN web app.
    Users(UsersSection),
}

/// A section's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionName {
    /// [`Section::KeySlots`].
    KeySlots,
    /// [`Section::Cameras`].
    Cameras,
    /// [`Section::Users`].
    Users,
}

impl SectionName {
    /// The name as stored and shown (`key_slots`).
    pub fn as_str(self) -> &'static str {
        match self {
            SectionName::KeySlots => "key_slots",
            SectionName::Cameras => "cameras",
            SectionName::Users => "users",
        }
    }
}

impl Section {
    /// Its name.
    pub fn name(&self) -> SectionName {
        match self {
            Section::KeySlots(_) => SectionName::KeySlots,
            Section::Cameras(_) => SectionName::Cameras,
            Section::Users(_) => SectionName::Users,
        }
    }

    /// Its revision, as the payload states it (unchecked: for routing and acks). `None`
    /// when the payload does not decode.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Section::KeySlots(list) => list.peek().ok().map(|l| l.version),
            Section::Cameras(set) => Some(set.revision),
            Section::Users(u) => Some(u.revision),
        }
    }
}

/// What the vm pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPush {
    /// The sections, each at most once.
    pub sections: Vec<Section>,
}

impl WireMessage for ConfigPush {
    const NAME: &'static str = "ConfigPush";
    const MAX_SIZE: usize = 256 * 1024;
}

/// The edge's answer, one entry per section pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigAck {
    /// The outcomes.
    pub sections: Vec<SectionAck>,
}

/// What the edge did with one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAck {
    /// The section.
    pub section: SectionName,
    /// Its outcome.
    pub outcome: SectionOutcome,
}

/// Applied, or refused with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionOutcome {
    /// The edge runs this revision.
    Applied {
        /// The revision.
        revision: u64,
    },
    /// Not applied; the edge keeps running `applied`.
    Refused {
        /// The revision offered (0 when it did not decode).
        revision: u64,
        /// Why, for the owner.
        reason: String,
        /// The revision the edge runs, if any.
        applied: Option<u64>,
    },
}

impl WireMessage for ConfigAck {
    const NAME: &'static str = "ConfigAck";
    const MAX_SIZE: usize = 16 * 1024;
}

/// `/guardian/config-change/1`, edge → vm: cameras changed on the box
/// (`guardian-edge camera add|remove`) since the revision the edge applied last. The vm
/// takes each change unless it changed that camera itself after `base_revision` (then its
/// own wins, and the edge gets it with the next push), and answers with the revision that
/// holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraChanges {
    /// The camera revision the changes were made on (`None`: the edge never had one).
    pub base_revision: Option<u64>,
    /// Cameras added or changed, passwords sealed to the edge itself.
    pub upserts: Vec<CameraConfig>,
    /// Cameras removed.
    pub removals: Vec<String>,
}

impl WireMessage for CameraChanges {
    const NAME: &'static str = "CameraChanges";
    const MAX_SIZE: usize = 256 * 1024;
}

/// The vm's answer to [`CameraChanges`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraChangesAck {
    /// The edge's camera revision holding the changes taken (`None` when none was).
    pub revision: Option<u64>,
    /// The changes not taken, and why.
    pub refused: Vec<ChangeRefusal>,
}

/// One change the vm did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRefusal {
    /// The camera.
    pub camera: String,
    /// Why, for the edge's log and the owner.
    pub reason: String,
}

impl WireMessage for CameraChangesAck {
    const NAME: &'static str = "CameraChangesAck";
    const MAX_SIZE: usize = 64 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::conformance;

    fn camera(i: usize) -> CameraConfig {
        CameraConfig {
            id: format!("cam-{i}"),
            name: "Front door".into(),
            url: "rtsp://192.0.2.10:554/main".into(),
            substream_url: Some("rtsp://192.0.2.10:554/sub".into()),
            transport: "tcp".into(),
            credential: Some(SealedCredential {
                username: "admin".into(),
                password_sealed: Some("YWdl".into()),
            }),
            enabled: true,
            detect: DetectSettings {
                categories: vec![Category::Person, Category::Car],
                min_score_milli: 300,
                threshold_milli: 500,
                fps: 5,
                width: 640,
                height: 360,
                zones: vec![Polygon {
                    name: "driveway".into(),
                    points: vec![(0, 0), (1000, 0), (1000, 1000)],
                }],
                masks: vec![],
                verify: true,
            },
            record: RecordSettings {
                pre_roll_secs: 5,
                post_roll_secs: 5,
            },
            onvif: None,
            archive: Some(ArchivePolicy {
                enabled: true,
                categories: vec![Category::Person],
                min_score_milli: 600,
                hours: vec!["22-06".into()],
            }),
        }
    }

    #[test]
    fn camera_config() {
        let c = camera(1);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<CameraConfig>(&json).unwrap(), c);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_bad_camera_is_refused_naming_the_field() {
        let bad = |f: fn(&mut CameraConfig), field: &str| {
            let mut c = camera(1);
            f(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.contains(field), "{e} should name {field}");
        };
        bad(|c| c.id = "Bad Id".into(), "camera id");
        bad(|c| c.name = " ".into(), "name");
        bad(|c| c.url = "http://x".into(), "source.url");
        bad(|c| c.url = "rtsp://u:p@h/x".into(), "user name");
        bad(|c| c.substream_url = Some("ftp://x".into()), "substream");
        bad(|c| c.transport = "quic".into(), "transport");
        bad(|c| c.detect.fps = 0, "detect.fps");
        bad(|c| c.detect.width = 642, "detect.width");
        bad(|c| c.detect.height = 2000, "detect.height");
        bad(|c| c.detect.threshold_milli = 1001, "detect.threshold");
        bad(|c| c.detect.zones[0].points.truncate(2), "detect.zones");
        bad(
            |c| {
                c.detect.masks = vec![Polygon {
                    name: String::new(),
                    points: vec![(0, 0), (1, 1), (2000, 0)],
                }]
            },
            "detect.masks",
        );
        bad(|c| c.record.pre_roll_secs = 61, "record.pre_roll_secs");
        bad(
            |c| c.archive.as_mut().unwrap().hours = vec!["8-25".into()],
            "archive.hours",
        );
        bad(
            |c| c.archive.as_mut().unwrap().min_score_milli = 1001,
            "archive.min_score",
        );
        fn onvif(c: &mut CameraConfig) {
            c.url.clear();
            c.substream_url = None;
            c.onvif = Some(OnvifSource {
                xaddr: "http://192.0.2.10/onvif/device_service".into(),
                profile: Some("main".into()),
                substream_profile: Some("sub".into()),
            });
        }
        let mut ok = camera(1);
        onvif(&mut ok);
        assert_eq!(ok.validate(), Ok(()));
        bad(
            |c| {
                onvif(c);
                c.url = "rtsp://h/x".into();
            },
            "not both",
        );
        bad(
            |c| {
                onvif(c);
                c.onvif.as_mut().unwrap().xaddr = "rtsp://h/x".into();
            },
            "source.onvif.xaddr",
        );
        bad(
            |c| {
                onvif(c);
                c.onvif.as_mut().unwrap().xaddr = "http://u:p@h/onvif".into();
            },
            "source.onvif.xaddr",
        );
        bad(
            |c| {
                onvif(c);
                c.onvif.as_mut().unwrap().profile = Some("a b".into());
            },
            "profile",
        );
        bad(|c| c.record.post_roll_secs = 601, "record.post_roll_secs");
        bad(
            |c| c.credential.as_mut().unwrap().username.clear(),
            "source.username",
        );
    }

    fn slots(version: u64) -> Signed<KeySlotList> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        Signed::sign(
            &KeySlotList {
                tenant_id: "t".into(),
                version,
                slots: vec![],
                signed_at_ms: 1,
            },
            &key,
        )
    }

    #[test]
    fn config_push() {
        let push = ConfigPush {
            sections: vec![
                Section::KeySlots(slots(4)),
                Section::Cameras(CameraSet {
                    revision: 9,
                    cameras: vec![camera(1), camera(2)],
                }),
            ],
        };
        conformance::check(&push);
        assert_eq!(push.sections[1].name(), SectionName::Cameras);
        assert_eq!(push.sections[1].revision(), Some(9));
        assert_eq!(SectionName::Cameras.as_str(), "cameras");
        assert_eq!(push.sections[0].name(), SectionName::KeySlots);
        assert_eq!(push.sections[0].revision(), Some(4));
        assert_eq!(SectionName::KeySlots.as_str(), "key_slots");
        assert_eq!(
            serde_json::to_value(SectionName::KeySlots).unwrap(),
            "key_slots"
        );
    }

    fn users() -> UsersSection {
        UsersSection {
            revision: 3,
            users: vec![
                LocalUser {
                    name: "alice".into(),
                    password_phc:
                        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
                    role: Role::Admin,
                    cameras: None,
                },
                LocalUser {
                    name: "sitter@home".into(),
                    password_phc:
                        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
                    role: Role::Viewer,
                    cameras: Some(vec!["porch".into()]),
                },
            ],
        }
    }

    #[test]
    fn the_users_section_travels_and_validates() {
        let push = ConfigPush {
            sections: vec![Section::Users(users())],
        };
        conformance::check(&push);
        assert_eq!(push.sections[0].name(), SectionName::Users);
        assert_eq!(push.sections[0].revision(), Some(3));
        assert_eq!(SectionName::Users.as_str(), "users");
        assert_eq!(serde_json::to_value(Role::Viewer).unwrap(), "viewer");
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
        conformance::check(&ConfigAck {
            sections: vec![SectionAck {
                section: SectionName::Users,
                outcome: SectionOutcome::Applied { revision: 3 },
            }],
        });
        assert_eq!(users().validate(), Ok(()));
        let bad = |f: fn(&mut UsersSection), what: &str| {
            let mut u = users();
            f(&mut u);
            let e = u.validate().unwrap_err();
            assert!(e.contains(what), "{e} should say {what}");
        };
        bad(|u| u.users[1].name = "alice".into(), "twice");
        bad(|u| u.users[0].name = "a b".into(), "user name");
        bad(|u| u.users[0].name = String::new(), "user name");
        bad(
            |u| u.users[0].password_phc = "hunter2".into(),
            "password_phc",
        );
        bad(
            |u| u.users[0].password_phc = "$argon2i$v=19$m=8,t=1,p=1$x$y".into(),
            "password_phc",
        );
        bad(
            |u| u.users[1].cameras = Some(vec!["Porch Cam".into()]),
            "cameras",
        );
    }

    #[test]
    fn camera_changes() {
        conformance::check(&CameraChanges {
            base_revision: Some(3),
            upserts: vec![camera(4)],
            removals: vec!["cam-2".into()],
        });
        conformance::check(&CameraChangesAck {
            revision: Some(4),
            refused: vec![ChangeRefusal {
                camera: "cam-2".into(),
                reason: "changed at the vm".into(),
            }],
        });
    }

    #[test]
    fn config_ack() {
        conformance::check(&ConfigAck {
            sections: vec![
                SectionAck {
                    section: SectionName::KeySlots,
                    outcome: SectionOutcome::Applied { revision: 7 },
                },
                SectionAck {
                    section: SectionName::KeySlots,
                    outcome: SectionOutcome::Refused {
                        revision: 8,
                        reason: "not signed by the owner's signing key".into(),
                        applied: Some(7),
                    },
                },
            ],
        });
    }
}
