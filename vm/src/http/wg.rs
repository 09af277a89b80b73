//! The WireGuard overlay (admin): `GET /api/v1/wg` (the vm's side: what a device's
//! configuration needs), the owner's devices (`/api/v1/wg/devices`), and an edge's key
//! rotation asked for (`POST /api/v1/devices/{peer}/overlay/rotate`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::overlay::devices::{self, AddError};
use crate::state::VmState;

/// The largest body of `POST /api/v1/wg/devices`.
pub(super) const MAX_BODY: u64 = 4096;

#[derive(Serialize)]
struct WgView {
    enabled: bool,
    error: Option<String>,
    public_key: Option<String>,
    endpoint: Option<String>,
    prefix_v6: Option<String>,
    range_v4: Option<String>,
    vm_address: Option<String>,
    vm_address_v4: Option<String>,
    keepalive_secs: u16,
    interface: String,
}

/// `GET /api/v1/wg`.
pub(super) async fn get(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let c = &state.config.wg;
    let settings = state.config.overlay_settings().ok();
    let overlay = state.overlay.get();
    let enabled = match overlay {
        Some(o) => o.is_running().await,
        None => false,
    };
    let error = match overlay {
        Some(o) if !enabled => Some(
            o.error()
                .map(str::to_owned)
                .unwrap_or_else(|| "the WireGuard device is stopped".into()),
        ),
        _ => None,
    };
    let vm = settings.as_ref().map(|s| s.prefixes.vm());
    Ok(warp::reply::json(&WgView {
        enabled,
        error,
        public_key: overlay.map(|o| o.public_key.to_base64()),
        endpoint: settings.as_ref().map(|s| s.endpoint.clone()),
        prefix_v6: settings.as_ref().map(|s| s.prefixes.v6_cidr()),
        range_v4: settings.as_ref().map(|s| s.prefixes.v4_cidr()),
        vm_address: vm.map(|a| a.v6.to_string()),
        vm_address_v4: vm.map(|a| a.v4.to_string()),
        keepalive_secs: c.keepalive_secs,
        interface: c.interface.clone(),
    })
    .into_response())
}

#[derive(Serialize)]
struct DevicesBody {
    devices: Vec<devices::DeviceListed>,
}

/// `GET /api/v1/wg/devices`.
pub(super) async fn list(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let devices = devices::list(&state).await.map_err(internal)?;
    Ok(warp::reply::json(&DevicesBody { devices }).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    name: String,
    public_key: String,
}

/// `POST /api/v1/wg/devices`: 201 with the device's addresses.
pub(super) async fn add(
    state: Arc<VmState>,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let b: AddBody = serde_json::from_slice(&body).map_err(|_| {
        warp::reject::custom(ApiError::BadRequest(
            "the body must be {\"name\": ..., \"public_key\": ...}".into(),
        ))
    })?;
    match devices::add(&state, &b.name, &b.public_key).await {
        Ok(d) => Ok(
            warp::reply::with_status(warp::reply::json(&d), StatusCode::CREATED).into_response(),
        ),
        Err(e @ AddError::Off) => Err(warp::reject::custom(ApiError::OverlayOff(e.to_string()))),
        Err(e @ (AddError::BadName(_) | AddError::BadKey)) => {
            Err(warp::reject::custom(ApiError::BadRequest(e.to_string())))
        }
        Err(e @ (AddError::NameTaken(_) | AddError::KeyTaken | AddError::Full)) => {
            Err(warp::reject::custom(ApiError::Conflict(e.to_string())))
        }
        Err(AddError::Db(e)) => Err(internal(e)),
    }
}

/// `DELETE /api/v1/wg/devices/{name}`: 204, or 404.
pub(super) async fn delete(
    name: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    if !protocols::messages::valid_id(&name) {
        return Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{name:?} is not a device name"
        ))));
    }
    if devices::remove(&state, &name).await.map_err(internal)? {
        Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
    } else {
        Err(warp::reject::custom(ApiError::NotFound(format!(
            "no WireGuard device named {name}"
        ))))
    }
}

#[derive(Serialize)]
struct RotateBody {
    peer_id: String,
    rotate_requested: bool,
}

/// `POST /api/v1/devices/{peer}/overlay/rotate`: 202; the edge makes a new key at its next
/// offer.
pub(super) async fn rotate(
    peer: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    let (p, now) = (peer.clone(), state.clock.wall_ms());
    let asked = state
        .db
        .call(move |c| crate::db::request_overlay_rotation(c, &p, now))
        .await
        .map_err(internal)?;
    if !asked {
        return Err(warp::reject::custom(ApiError::NotFound(format!(
            "no edge {peer} on the WireGuard overlay"
        ))));
    }
    tracing::info!(%peer, "an edge's WireGuard key rotation asked for");
    Ok(warp::reply::with_status(
        warp::reply::json(&RotateBody {
            peer_id: peer,
            rotate_requested: true,
        }),
        StatusCode::ACCEPTED,
    )
    .into_response())
}
