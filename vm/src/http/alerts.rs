//! `GET/PUT /api/v1/alerts/rules`, `GET/PUT /api/v1/mode`, `GET /api/v1/alerts`: the rules
//! (vm.toml's until the API sets its own, which are kept in the database and win), the
//! arming mode, and the notifications sent and waiting, with why a failing one failed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::alerts::engine;
use crate::alerts::message::Payload;
use crate::alerts::rules::{self, Mode, Rule};
use crate::db;
use crate::state::VmState;

/// The largest rules body accepted.
pub(super) const MAX_BODY: u64 = 64 * 1024;

fn bad(m: impl std::fmt::Display) -> Rejection {
    warp::reject::custom(ApiError::BadRequest(m.to_string()))
}

#[derive(Serialize)]
struct RulesView {
    rules: Vec<Rule>,
    /// `config` (vm.toml's) or `api` (set through the API).
    source: &'static str,
    time_zone: String,
}

async fn rules_view(state: &VmState) -> Result<RulesView, Rejection> {
    let setup = state.alerts.clone();
    let (rules, from_api) = state
        .db
        .call(move |c| {
            let from_api = db::alert_rules_json(c)?.is_some();
            Ok((engine::rules_in_force(c, &setup)?, from_api))
        })
        .await
        .map_err(internal)?;
    Ok(RulesView {
        rules,
        source: if from_api { "api" } else { "config" },
        time_zone: state.config.alerts.time_zone.clone(),
    })
}

/// `GET /api/v1/alerts/rules`.
pub(super) async fn get_rules(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    Ok(warp::reply::json(&rules_view(&state).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesBody {
    rules: Vec<Rule>,
}

/// `PUT /api/v1/alerts/rules`: replaces the rules.
pub(super) async fn put_rules(
    state: Arc<VmState>,
    raw: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let body: RulesBody = serde_json::from_slice(&raw).map_err(bad)?;
    rules::validate(&body.rules).map_err(bad)?;
    let json = serde_json::to_string(&body.rules).map_err(internal)?;
    state
        .db
        .call(move |c| db::set_alert_rules_json(c, &json))
        .await
        .map_err(internal)?;
    tracing::info!(rules = body.rules.len(), "alert rules set through the API");
    Ok(warp::reply::json(&rules_view(&state).await?).into_response())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

/// `GET /api/v1/mode`.
pub(super) async fn get_mode(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let mode = state.db.call(|c| engine::mode(c)).await.map_err(internal)?;
    Ok(warp::reply::json(&ModeBody {
        mode: mode.as_str().into(),
    })
    .into_response())
}

/// `PUT /api/v1/mode`: `home`, `away` or `off`.
pub(super) async fn put_mode(
    state: Arc<VmState>,
    raw: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let body: ModeBody = serde_json::from_slice(&raw).map_err(bad)?;
    let mode = Mode::parse(&body.mode).ok_or_else(|| bad("mode must be home, away or off"))?;
    set_mode(&state, mode).await.map_err(internal)?;
    get_mode(state).await
}

/// Sets the mode (the API, MQTT) and wakes what publishes it.
pub async fn set_mode(state: &VmState, mode: Mode) -> Result<(), db::DbError> {
    state
        .db
        .call(move |c| db::set_alert_mode(c, mode.as_str()))
        .await?;
    tracing::info!(mode = mode.as_str(), "alert mode set");
    state.mode_changed.notify_waiters();
    Ok(())
}

#[derive(Serialize)]
struct NotificationView {
    id: String,
    channel: String,
    kind: String,
    /// `sent`, `pending` (not tried yet) or `failing` (tried, will be tried again).
    status: &'static str,
    attempts: u32,
    last_error: Option<String>,
    created_at_ms: u64,
    next_at_ms: Option<u64>,
    sent_at_ms: Option<u64>,
    title: Option<String>,
    event_id: Option<String>,
    rule: Option<String>,
    condition: Option<String>,
}

/// `GET /api/v1/alerts`: the latest 200 notifications, newest first, and the channels.
pub(super) async fn list(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let rows = state
        .db
        .call(|c| db::notifications(c, None, 200))
        .await
        .map_err(internal)?;
    let views: Vec<NotificationView> = rows
        .into_iter()
        .map(|r| {
            let p: Option<Payload> = serde_json::from_str(&r.payload_json).ok();
            NotificationView {
                status: match (r.sent_at_ms, r.attempts) {
                    (Some(_), _) => "sent",
                    (None, 0) => "pending",
                    (None, _) => "failing",
                },
                next_at_ms: r.sent_at_ms.is_none().then_some(r.next_at_ms),
                title: p.as_ref().map(|p| p.title.clone()),
                event_id: p.as_ref().and_then(|p| p.event_id.clone()),
                rule: p.as_ref().and_then(|p| p.rule.clone()),
                condition: p.as_ref().and_then(|p| p.condition.clone()),
                id: r.id,
                channel: r.channel,
                kind: r.kind,
                attempts: r.attempts,
                last_error: r.last_error,
                created_at_ms: r.created_at_ms,
                sent_at_ms: r.sent_at_ms,
            }
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({
        "channels": state.alerts.channels,
        "notifications": views,
    }))
    .into_response())
}
