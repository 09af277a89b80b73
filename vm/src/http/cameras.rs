//! `GET /api/v1/cameras`, `PUT` and `DELETE /api/v1/cameras/{id}`: camera configuration
//! owned by the vm, with each camera's live state from its edge's telemetry.
//!
//! A `PUT` is validated ([`CameraConfig::validate`], 400 naming the field), stored with the
//! edge's next camera revision and pushed as the `cameras` section ([`crate::configure`]).
//! Passwords: a client that can seal sends `source.password_sealed` (sealed to the edge's
//! own recipient for this camera and host, as `guardian cameras set` does), which the vm
//! stores and forwards without being able to open it. A plain `source.password` (or one in the
//! URL) is the weaker path: it is sealed here on arrival, in memory, and only the sealed form
//! is stored; it is never logged. No answer ever carries a password or its sealed form.

use std::sync::Arc;

use protocols::credential;
use protocols::messages::Category;
use protocols::messages::config::{
    ArchivePolicy, CameraConfig, DetectSettings, OnvifSource, Polygon, RecordSettings,
    SealedCredential, SectionName,
};
use protocols::messages::telemetry::CameraStatus;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Rejection, Reply};
use zeroize::Zeroizing;

use super::{ApiError, internal};
use crate::db::{self, AckRow, CameraRow, DeviceRow};
use crate::state::VmState;

/// The largest camera body accepted.
pub(super) const MAX_BODY: u64 = 64 * 1024;

/// A `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraBody {
    name: Option<String>,
    /// The edge's peer id or name; optional when the tenant has one edge.
    edge: Option<String>,
    source: Source,
    substream: Option<String>,
    #[serde(default = "tcp")]
    transport: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    detect: DetectBody,
    #[serde(default)]
    record: RecordBody,
    /// This camera's own archive policy; absent for the edge's.
    archive: Option<ArchiveBody>,
}

/// A camera's own archive policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ArchiveBody {
    enabled: bool,
    categories: Vec<Category>,
    min_score: f32,
    hours: Vec<String>,
}

impl Default for ArchiveBody {
    fn default() -> Self {
        ArchiveBody {
            enabled: true,
            categories: Vec::new(),
            min_score: 0.0,
            hours: Vec::new(),
        }
    }
}

/// An ONVIF camera: its device service, user, and the profiles to stream.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnvifBody {
    xaddr: String,
    username: Option<String>,
    password: Option<String>,
    password_sealed: Option<String>,
    profile: Option<String>,
    substream_profile: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

fn yes() -> bool {
    true
}

/// Where the video comes from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    url: Option<String>,
    onvif: Option<OnvifBody>,
    username: Option<String>,
    password: Option<String>,
    password_sealed: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field(
                "url",
                &self
                    .url
                    .as_deref()
                    .map(|u| credential::split_userinfo(u).url),
            )
            .field("username", &self.username)
            .field("onvif", &self.onvif.as_ref().map(|o| &o.xaddr))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DetectBody {
    categories: Vec<Category>,
    min_score: f32,
    threshold: f32,
    fps: u8,
    width: u16,
    height: u16,
    zones: Vec<Polygon>,
    masks: Vec<Polygon>,
    verify: bool,
}

impl Default for DetectBody {
    fn default() -> Self {
        DetectBody {
            categories: Category::defaults(),
            min_score: 0.3,
            threshold: 0.5,
            fps: 5,
            width: 640,
            height: 360,
            zones: Vec::new(),
            masks: Vec::new(),
            verify: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RecordBody {
    pre_roll_secs: u16,
    post_roll_secs: u16,
}

impl Default for RecordBody {
    fn default() -> Self {
        RecordBody {
            pre_roll_secs: 5,
            post_roll_secs: 5,
        }
    }
}

/// A score 0-1 in thousandths; out of range stays out of range (the check says so).
fn milli(v: f32) -> u16 {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        (v * 1000.0).round() as u16
    } else {
        u16::MAX
    }
}

/// The edge a camera goes to: named by peer id or name, or the only one.
pub fn pick_edge<'a>(
    devices: &'a [DeviceRow],
    edge: Option<&str>,
) -> Result<&'a DeviceRow, String> {
    match edge {
        Some(e) => {
            let by_id = devices.iter().find(|d| d.peer_id == e);
            let by_name: Vec<&DeviceRow> = devices.iter().filter(|d| d.name == e).collect();
            match (by_id, by_name.as_slice()) {
                (Some(d), _) => Ok(d),
                (None, [d]) => Ok(*d),
                (None, []) => Err(format!("no edge {e:?} is enrolled")),
                (None, _) => Err(format!("several edges are named {e:?}: give its peer id")),
            }
        }
        None => match devices {
            [d] => Ok(d),
            [] => Err("no edge is enrolled yet".into()),
            _ => Err("the tenant has several edges: say which one in \"edge\"".into()),
        },
    }
}

/// Turns a `PUT` body into the stored configuration, sealing a plain password to the edge
/// with `seal` (so this stays pure). The error is the 400's message.
pub fn to_config(
    id: &str,
    body: CameraBody,
    edge: &DeviceRow,
    seal: impl FnOnce(&str, &str, &str, &str) -> Result<String, String>,
) -> Result<CameraConfig, String> {
    let source = body.source;
    // Where the credential goes, and the host it is bound to: the URL's, or for an ONVIF
    // camera its device service's (its stream URLs come from the camera at each connect).
    let (url, onvif, username, plain, sealed, bound_to) = match source.onvif {
        Some(o) => {
            if source.url.is_some()
                || source.username.is_some()
                || source.password.is_some()
                || source.password_sealed.is_some()
            {
                return Err(
                    "give source.url (with source.username, ...) or source.onvif \
                            (with source.onvif.username, ...), not both"
                        .into(),
                );
            }
            if body.substream.is_some() {
                return Err("an ONVIF camera's substream is source.onvif.substream_profile".into());
            }
            let xaddr = credential::split_userinfo(&o.xaddr);
            if xaddr.username.is_some() {
                return Err(
                    "source.onvif.xaddr carries no user name (see source.onvif.username)".into(),
                );
            }
            let bound_to = xaddr.url.clone();
            (
                String::new(),
                Some(OnvifSource {
                    xaddr: xaddr.url,
                    profile: o.profile,
                    substream_profile: o.substream_profile,
                }),
                o.username,
                o.password.map(Zeroizing::new),
                o.password_sealed,
                bound_to,
            )
        }
        None => {
            let url = source
                .url
                .ok_or("source.url (or source.onvif) is required")?;
            let mut parts = credential::split_userinfo(&url);
            if parts.username.is_some() && source.username.is_some() {
                return Err("give the user name either in source.url or in source.username".into());
            }
            let username = source.username.or(parts.username.take());
            let plain = source
                .password
                .map(Zeroizing::new)
                .or(parts.password.take());
            let bound_to = parts.url.clone();
            (
                parts.url,
                None,
                username,
                plain,
                source.password_sealed,
                bound_to,
            )
        }
    };
    if plain.is_some() && sealed.is_some() {
        return Err("give source.password or source.password_sealed, not both".into());
    }
    let password_sealed = match (plain, sealed) {
        (Some(p), None) => {
            let recipient = edge.age_recipient.as_deref().ok_or(
                "this edge was enrolled before edges made their own keys: it cannot take a \
                 password; reinstall it",
            )?;
            let host = credential::host(&bound_to).unwrap_or_default();
            Some(seal(recipient, id, &host, &p)?)
        }
        (None, s) => s,
        (Some(_), Some(_)) => unreachable!("refused above"),
    };
    if password_sealed.is_some() && username.is_none() {
        return Err(
            "a password needs a user name (source.username, or source.onvif.username)".into(),
        );
    }
    let config = CameraConfig {
        id: id.to_owned(),
        name: body.name.unwrap_or_else(|| id.to_owned()),
        url,
        substream_url: body.substream,
        transport: body.transport,
        credential: username.map(|username| SealedCredential {
            username,
            password_sealed,
        }),
        enabled: body.enabled,
        detect: DetectSettings {
            categories: body.detect.categories,
            min_score_milli: milli(body.detect.min_score),
            threshold_milli: milli(body.detect.threshold),
            fps: body.detect.fps,
            width: body.detect.width,
            height: body.detect.height,
            zones: body.detect.zones,
            masks: body.detect.masks,
            verify: body.detect.verify,
        },
        record: RecordSettings {
            pre_roll_secs: body.record.pre_roll_secs,
            post_roll_secs: body.record.post_roll_secs,
        },
        onvif,
        archive: body.archive.map(|a| ArchivePolicy {
            enabled: a.enabled,
            categories: a.categories,
            min_score_milli: milli(a.min_score),
            hours: a.hours,
        }),
    };
    config.validate()?;
    Ok(config)
}

/// Why a camera failed, from its last error: `unauthorized`, `unreachable`, `not_h264`,
/// `not_found` or `other`.
pub fn reason(last_error: &str) -> &'static str {
    let e = last_error.to_ascii_lowercase();
    if e.contains("unauthorized") || e.contains("401") || e.contains("authenticat") {
        "unauthorized"
    } else if e.contains("not h.264") || e.contains("not h264") {
        "not_h264"
    } else if e.contains("not found") || e.contains("404") || e.contains("no such file") {
        "not_found"
    } else if e.contains("could not connect")
        || e.contains("connection refused")
        || e.contains("timed out")
        || e.contains("timeout")
        || e.contains("could not open resource")
        || e.contains("unreachable")
    {
        "unreachable"
    } else {
        "other"
    }
}

#[derive(Serialize)]
struct SourceView<'a> {
    /// The URL without user information; `null` for an ONVIF camera.
    url: Option<String>,
    onvif: Option<OnvifView<'a>>,
    username: Option<String>,
    has_password: bool,
}

#[derive(Serialize)]
struct OnvifView<'a> {
    xaddr: &'a str,
    profile: Option<&'a str>,
    substream_profile: Option<&'a str>,
}

#[derive(Serialize)]
struct ArchiveView<'a> {
    enabled: bool,
    categories: &'a [Category],
    min_score: f32,
    hours: &'a [String],
}

#[derive(Serialize)]
struct DetectView<'a> {
    categories: &'a [Category],
    min_score: f32,
    threshold: f32,
    fps: u8,
    width: u16,
    height: u16,
    zones: &'a [Polygon],
    masks: &'a [Polygon],
    verify: bool,
}

#[derive(Serialize)]
struct CameraView<'a> {
    id: &'a str,
    name: &'a str,
    edge: &'a str,
    edge_name: Option<&'a str>,
    edge_online: bool,
    source: SourceView<'a>,
    substream: Option<&'a str>,
    transport: &'a str,
    enabled: bool,
    detect: DetectView<'a>,
    record: &'a RecordSettings,
    /// The camera's own archive policy; `null` for the edge's.
    archive: Option<ArchiveView<'a>>,
    /// The edge's camera revision at which this camera last changed.
    revision: u64,
    /// `applied` when the edge runs that revision (or a later one), `pending`, or `refused`.
    config_state: &'static str,
    config_refused_reason: Option<&'a str>,
    /// streaming | connecting | stalled | disabled | failed, from the edge's last report;
    /// `null` before the edge has reported the camera.
    state: Option<protocols::messages::telemetry::CameraState>,
    reason: Option<&'static str>,
    last_error: Option<&'a str>,
    fps: Option<f64>,
    /// The recorded stream's size and bitrate, and when its last frame arrived.
    width: Option<u32>,
    height: Option<u32>,
    bitrate_kbps: Option<u32>,
    last_frame_ms: Option<u64>,
    reported_at_ms: Option<u64>,
    updated_at_ms: u64,
}

/// Whether the edge runs revision `revision` of its cameras, from its ack.
pub fn config_state(revision: u64, ack: Option<&AckRow>) -> &'static str {
    match ack {
        Some(a) if a.applied_revision.is_some_and(|r| r >= revision) => "applied",
        Some(a) if a.refused_reason.is_some() && a.offered_revision >= Some(revision) => "refused",
        _ => "pending",
    }
}

fn view<'a>(
    state: &VmState,
    row: &'a CameraRow,
    device: Option<&'a DeviceRow>,
    ack: Option<&'a AckRow>,
    status: Option<(&'a CameraStatus, u64)>,
) -> CameraView<'a> {
    let c = &row.config;
    let config_state = config_state(row.changed_revision, ack);
    let live = status.map(|(s, _)| s);
    CameraView {
        id: &c.id,
        name: &c.name,
        edge: &row.peer_id,
        edge_name: device.map(|d| d.name.as_str()),
        edge_online: state.is_connected(&row.peer_id),
        source: SourceView {
            url: (!c.url.is_empty()).then(|| c.url.clone()),
            onvif: c.onvif.as_ref().map(|o| OnvifView {
                xaddr: &o.xaddr,
                profile: o.profile.as_deref(),
                substream_profile: o.substream_profile.as_deref(),
            }),
            username: c.credential.as_ref().map(|x| x.username.clone()),
            has_password: c
                .credential
                .as_ref()
                .is_some_and(|x| x.password_sealed.is_some()),
        },
        substream: c.substream_url.as_deref(),
        transport: &c.transport,
        enabled: c.enabled,
        detect: DetectView {
            categories: &c.detect.categories,
            min_score: f32::from(c.detect.min_score_milli) / 1000.0,
            threshold: f32::from(c.detect.threshold_milli) / 1000.0,
            fps: c.detect.fps,
            width: c.detect.width,
            height: c.detect.height,
            zones: &c.detect.zones,
            masks: &c.detect.masks,
            verify: c.detect.verify,
        },
        record: &c.record,
        archive: c.archive.as_ref().map(|a| ArchiveView {
            enabled: a.enabled,
            categories: &a.categories,
            min_score: f32::from(a.min_score_milli) / 1000.0,
            hours: &a.hours,
        }),
        revision: row.changed_revision,
        config_state,
        config_refused_reason: ack
            .filter(|_| config_state == "refused")
            .and_then(|a| a.refused_reason.as_deref()),
        state: live.map(|s| s.state),
        reason: live.and_then(|s| s.last_error.as_deref().map(reason)),
        last_error: live.and_then(|s| s.last_error.as_deref()),
        fps: live.map(|s| f64::from(s.fps_milli) / 1000.0),
        width: live.map(|s| s.width).filter(|w| *w > 0),
        height: live.map(|s| s.height).filter(|h| *h > 0),
        bitrate_kbps: live.map(|s| s.bitrate_kbps),
        last_frame_ms: live.map(|s| s.last_frame_ms).filter(|t| *t > 0),
        reported_at_ms: status.map(|(_, at)| at),
        updated_at_ms: row.updated_at_ms,
    }
}

/// `GET /api/v1/cameras`.
pub(super) async fn list(
    state: Arc<VmState>,
    p: crate::access::Principal,
) -> Result<warp::reply::Response, Rejection> {
    let (rows, devices, acks, reports) = state
        .db
        .call(|c| {
            let devices = db::devices(c)?;
            let mut reports = Vec::new();
            for d in &devices {
                if let Some(t) = db::latest_telemetry(c, &d.peer_id)? {
                    reports.push((d.peer_id.clone(), t));
                }
            }
            Ok((
                db::cameras(c)?,
                devices,
                db::config_acks(c, SectionName::Cameras.as_str())?,
                reports,
            ))
        })
        .await
        .map_err(internal)?;
    let cameras: Vec<CameraView<'_>> = rows
        .iter()
        .filter(|r| p.may_see(&r.config.id))
        .map(|r| {
            let status = reports
                .iter()
                .filter(|(p, _)| *p == r.peer_id)
                .find_map(|(_, t)| {
                    t.cameras
                        .iter()
                        .find(|s| s.camera_id == r.config.id)
                        .map(|s| (s, t.at_ms))
                });
            view(
                &state,
                r,
                devices.iter().find(|d| d.peer_id == r.peer_id),
                acks.iter().find(|a| a.peer_id == r.peer_id),
                status,
            )
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({ "cameras": cameras })).into_response())
}

pub(super) fn check_camera_id(id: &str) -> Result<(), Rejection> {
    if protocols::messages::valid_id(id) {
        Ok(())
    } else {
        Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{id:?} is not a camera id: 1 to 48 characters of a-z, 0-9 and -"
        ))))
    }
}

/// `PUT /api/v1/cameras/{id}`.
pub(super) async fn put(
    id: String,
    state: Arc<VmState>,
    raw: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    check_camera_id(&id)?;
    let bad = |m: String| warp::reject::custom(ApiError::BadRequest(m));
    // serde's message names the field and never quotes a value of a string field it took.
    let body: CameraBody = serde_json::from_slice(&raw).map_err(|e| bad(format!("{e}")))?;
    let devices = state.db.call(|c| db::devices(c)).await.map_err(internal)?;
    let edge = pick_edge(&devices, body.edge.as_deref())
        .map_err(bad)?
        .clone();
    let mut config = to_config(&id, body, &edge, |r, cam, host, p| {
        credential::seal(r, cam, host, p).map_err(|e| e.to_string())
    })
    .map_err(bad)?;
    let (peer, now) = (edge.peer_id.clone(), state.clock.wall_ms());
    let revision = state
        .db
        .call(move |c| {
            let old = db::camera(c, &config.id)?;
            keep_password(
                &mut config,
                old.as_ref().map(|o| (o.peer_id.as_str(), &o.config)),
                &peer,
            );
            db::put_camera(c, &peer, &config, now)
        })
        .await
        .map_err(internal)?;
    tracing::info!(camera = %id, edge = %edge.peer_id, revision, "camera configured; offering it to the edge");
    state.config_changed.notify_one();
    one(&state, &id).await
}

/// A change that gives the same user name but no password keeps the stored sealed password,
/// when the camera stays on the same edge with the same source (the seal is bound to the camera
/// and its host): an owner edits a camera's zones without typing its password again.
pub(super) fn keep_password(
    new: &mut CameraConfig,
    old: Option<(&str, &CameraConfig)>,
    peer: &str,
) {
    let Some((old_peer, old)) = old else { return };
    let (Some(n), Some(o)) = (new.credential.as_mut(), old.credential.as_ref()) else {
        return;
    };
    if n.password_sealed.is_none()
        && o.password_sealed.is_some()
        && n.username == o.username
        && old_peer == peer
        && new.url == old.url
        && new.onvif.as_ref().map(|x| &x.xaddr) == old.onvif.as_ref().map(|x| &x.xaddr)
    {
        n.password_sealed = o.password_sealed.clone();
    }
}

async fn one(state: &Arc<VmState>, id: &str) -> Result<warp::reply::Response, Rejection> {
    let i = id.to_owned();
    let (row, device, ack) = state
        .db
        .call(move |c| {
            let Some(row) = db::camera(c, &i)? else {
                return Ok((None, None, None));
            };
            let device = db::device(c, &row.peer_id)?;
            let ack = db::config_acks(c, SectionName::Cameras.as_str())?
                .into_iter()
                .find(|a| a.peer_id == row.peer_id);
            Ok((Some(row), device, ack))
        })
        .await
        .map_err(internal)?;
    let row =
        row.ok_or_else(|| warp::reject::custom(ApiError::NotFound(format!("no camera {id}"))))?;
    Ok(warp::reply::json(&view(state, &row, device.as_ref(), ack.as_ref(), None)).into_response())
}

/// `DELETE /api/v1/cameras/{id}`: the edge stops it (its recorded events stay).
pub(super) async fn delete(
    id: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    check_camera_id(&id)?;
    let i = id.clone();
    let revision = state
        .db
        .call(move |c| db::delete_camera(c, &i))
        .await
        .map_err(internal)?
        .ok_or_else(|| warp::reject::custom(ApiError::NotFound(format!("no camera {id}"))))?;
    tracing::info!(camera = %id, revision, "camera deleted; offering the change to the edge");
    state.config_changed.notify_one();
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, age: Option<&str>) -> DeviceRow {
        DeviceRow {
            peer_id: format!("peer-{name}"),
            name: name.into(),
            token_id: "t".into(),
            recipient: "age1owner".into(),
            age_recipient: age.map(str::to_owned),
            enrolled_at_ms: 0,
            agent_version: "v".into(),
            last_seen_ms: 0,
        }
    }

    fn body(json: serde_json::Value) -> CameraBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_edit_without_a_password_keeps_the_sealed_one_only_for_the_same_source() {
        let edge = device("home", Some("age1edge"));
        let make =
            |json| to_config("porch", body(json), &edge, |_, _, _, _| Ok("S".into())).unwrap();
        let old = make(
            serde_json::json!({"source": {"url": "rtsp://192.0.2.5/main", "username": "u", "password": "p"}}),
        );
        let edit = serde_json::json!({"source": {"url": "rtsp://192.0.2.5/main", "username": "u"}});
        let mut new = make(edit.clone());
        keep_password(&mut new, Some(("peer-home", &old)), "peer-home");
        assert_eq!(
            new.credential.unwrap().password_sealed.as_deref(),
            Some("S")
        );
        // Another host, another user or another edge: the password is not carried over.
        for (json, peer) in [
            (
                serde_json::json!({"source": {"url": "rtsp://192.0.2.6/main", "username": "u"}}),
                "peer-home",
            ),
            (
                serde_json::json!({"source": {"url": "rtsp://192.0.2.5/main", "username": "v"}}),
                "peer-home",
            ),
            (edit.clone(), "peer-shop"),
        ] {
            let mut new = make(json);
            keep_password(&mut new, Some(("peer-home", &old)), peer);
            assert_eq!(new.credential.unwrap().password_sealed, None);
        }
    }

    #[test]
    fn the_edge_is_named_or_the_only_one() {
        let one = [device("home", None)];
        assert_eq!(pick_edge(&one, None).unwrap().name, "home");
        assert_eq!(pick_edge(&one, Some("peer-home")).unwrap().name, "home");
        assert!(
            pick_edge(&one, Some("shop"))
                .unwrap_err()
                .contains("no edge")
        );
        let two = [device("home", None), device("shop", None)];
        assert!(pick_edge(&two, None).unwrap_err().contains("several edges"));
        assert_eq!(pick_edge(&two, Some("shop")).unwrap().peer_id, "peer-shop");
        assert!(pick_edge(&[], None).is_err());
    }

    #[test]
    fn a_plain_password_is_sealed_and_never_kept() {
        let edge = device("home", Some("age1edge"));
        let mut sealed_with = None;
        let c = to_config(
            "porch",
            body(serde_json::json!({"source": {"url": "rtsp://admin:hunter2@192.0.2.5/main"}})),
            &edge,
            |r, cam, host, p| {
                sealed_with = Some((r.to_owned(), cam.to_owned(), host.to_owned(), p.to_owned()));
                Ok("SEALED".into())
            },
        )
        .unwrap();
        assert_eq!(
            sealed_with.unwrap(),
            (
                "age1edge".into(),
                "porch".into(),
                "192.0.2.5".into(),
                "hunter2".into()
            )
        );
        assert_eq!(c.url, "rtsp://192.0.2.5/main");
        let cred = c.credential.clone().unwrap();
        assert_eq!(
            (cred.username.as_str(), cred.password_sealed.as_deref()),
            ("admin", Some("SEALED"))
        );
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        // Defaults: the camera's id as its name, person and vehicles at 5 fps.
        assert_eq!(c.name, "porch");
        assert_eq!(c.detect.fps, 5);
        assert_eq!(c.detect.threshold_milli, 500);
    }

    #[test]
    fn a_sealed_password_is_stored_as_given_and_bad_bodies_say_why() {
        let edge = device("home", None);
        let never = |_: &str, _: &str, _: &str, _: &str| -> Result<String, String> {
            panic!("nothing to seal")
        };
        let c = to_config(
            "porch",
            body(serde_json::json!({"source": {"url": "rtsp://h/x", "username": "u", "password_sealed": "AGE"}})),
            &edge,
            never,
        )
        .unwrap();
        assert_eq!(
            c.credential.unwrap().password_sealed.as_deref(),
            Some("AGE")
        );
        let err = |j: serde_json::Value, e: &DeviceRow| {
            to_config("porch", body(j), e, |_, _, _, _| Ok("S".into())).unwrap_err()
        };
        assert!(err(serde_json::json!({"source": {}}), &edge).contains("source.url"));
        assert!(err(serde_json::json!({"source": {"url": "rtsp://h/x", "username": "u", "password": "p", "password_sealed": "S"}}), &edge).contains("not both"));
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://h/x", "password_sealed": "S"}}),
                &edge
            )
            .contains("source.username")
        );
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://u:p@h/x"}}),
                &edge
            )
            .contains("reinstall")
        );
        assert!(
            err(
                serde_json::json!({"source": {"onvif": {"xaddr": "rtsp://h/x"}}}),
                &edge
            )
            .contains("source.onvif.xaddr")
        );
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://h/x", "onvif": {"xaddr": "http://h/onvif"}}}),
                &edge
            )
            .contains("not both")
        );
        assert!(
            err(
                serde_json::json!({"source": {"onvif": {"xaddr": "http://h/onvif"}}, "substream": "rtsp://h/s"}),
                &edge
            )
            .contains("substream_profile")
        );
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://h/x"}, "archive": {"hours": ["25-3"]}}),
                &edge
            )
            .contains("archive.hours")
        );
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://h/x"}, "detect": {"threshold": 1.5}}),
                &edge
            )
            .contains("detect.threshold")
        );
        assert!(
            err(
                serde_json::json!({"source": {"url": "rtsp://h/x"}, "detect": {"fps": 0}}),
                &edge
            )
            .contains("detect.fps")
        );
        assert!(
            err(serde_json::json!({"source": {"url": "ftp://h/x"}}), &edge).contains("source.url")
        );
        assert!(
            serde_json::from_value::<CameraBody>(
                serde_json::json!({"source": {"url": "x"}, "colour": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn an_onvif_camera_s_password_is_bound_to_its_device_service() {
        let edge = device("home", Some("age1edge"));
        let mut sealed_with = None;
        let c = to_config(
            "door",
            body(serde_json::json!({
                "source": {"onvif": {"xaddr": "http://10.0.0.3:8080/onvif/device_service",
                    "username": "admin", "password": "hunter2", "profile": "main",
                    "substream_profile": "sub"}},
                "archive": {"categories": ["person"], "min_score": 0.7, "hours": ["22-06"]}
            })),
            &edge,
            |_, cam, host, p| {
                sealed_with = Some((cam.to_owned(), host.to_owned(), p.to_owned()));
                Ok("SEALED".into())
            },
        )
        .unwrap();
        assert_eq!(
            sealed_with.unwrap(),
            ("door".into(), "10.0.0.3".into(), "hunter2".into())
        );
        assert_eq!(c.url, "");
        let o = c.onvif.clone().unwrap();
        assert_eq!(o.xaddr, "http://10.0.0.3:8080/onvif/device_service");
        assert_eq!(
            (o.profile.as_deref(), o.substream_profile.as_deref()),
            (Some("main"), Some("sub"))
        );
        assert_eq!(c.credential.as_ref().unwrap().username, "admin");
        let a = c.archive.clone().unwrap();
        assert_eq!(
            (a.enabled, a.min_score_milli, a.hours.as_slice()),
            (true, 700, &["22-06".to_string()][..])
        );
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
    }

    #[test]
    fn reasons_and_config_states() {
        assert_eq!(reason("rtspsrc: Unauthorized (401)"), "unauthorized");
        assert_eq!(reason("stream is not H.264 (image/jpeg)"), "not_h264");
        assert_eq!(reason("Could not connect to server"), "unreachable");
        assert_eq!(reason("Not found"), "not_found");
        assert_eq!(reason("something else"), "other");
        let ack = |applied, offered, refused: bool| AckRow {
            peer_id: "p".into(),
            applied_revision: applied,
            offered_revision: offered,
            refused_reason: refused.then(|| "why".into()),
            updated_at_ms: 0,
        };
        assert_eq!(config_state(3, None), "pending");
        assert_eq!(
            config_state(3, Some(&ack(Some(4), Some(4), false))),
            "applied"
        );
        assert_eq!(
            config_state(3, Some(&ack(Some(2), Some(3), true))),
            "refused"
        );
        assert_eq!(
            config_state(3, Some(&ack(Some(2), Some(3), false))),
            "pending"
        );
    }
}
