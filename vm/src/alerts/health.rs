//! The health watcher: every `alerts.health_check_secs`, the conditions that hold
//! ([`super::conditions`]) against those raised before (table `health_conditions`): a new one
//! is raised, one that ended is recovered, each a notification to every channel (whatever
//! the mode), in one transaction with the table. Occurrences (an enrollment refused) are
//! sent as they happen ([`occurrence`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use guardian_node::Shutdown;

use super::conditions::{self, EdgeView};
use super::engine;
use super::message::{Payload, health_alert};
use super::rules::Severity;
use crate::db;
use crate::state::VmState;

/// Watches until `shutdown` (returns at once when `[alerts] health` is off).
pub async fn watch(state: Arc<VmState>, shutdown: Shutdown) {
    if !state.config.alerts.health {
        return;
    }
    let every = Duration::from_secs(state.config.alerts.health_check_secs.max(1));
    let mut bad_since: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            _ = state.clock.sleep(every) => {}
        }
        if let Err(e) = check(&state, &mut bad_since).await {
            tracing::warn!(error = %e, "health check failed; will retry");
        }
    }
}

async fn check(state: &VmState, bad_since: &mut BTreeMap<String, u64>) -> Result<(), db::DbError> {
    let health = state.edge_health().await?;
    let reports = state
        .db
        .call(|c| {
            let mut out = Vec::new();
            for d in db::devices(c)? {
                out.push((d.peer_id.clone(), db::latest_telemetry(c, &d.peer_id)?));
            }
            Ok(out)
        })
        .await?;
    let now = state.clock.wall_ms();
    let cameras_of = |peer: &str| {
        reports
            .iter()
            .find(|(p, _)| p == peer)
            .and_then(|(_, t)| t.as_ref())
            .map(|t| t.cameras.clone())
            .unwrap_or_default()
    };
    let cams: Vec<_> = health.iter().map(|(d, _)| cameras_of(&d.peer_id)).collect();
    let views: Vec<EdgeView<'_>> = health
        .iter()
        .zip(&cams)
        .map(|((d, h), c)| EdgeView {
            peer_id: &d.peer_id,
            name: &d.name,
            health: h,
            cameras: c,
        })
        .collect();
    let holding = conditions::conditions(
        &views,
        bad_since,
        state.config.alerts.camera_silent_secs,
        now,
        &state.alerts.link_base,
    );
    let setup = state.alerts.clone();
    let queued = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let raised = db::health_conditions(&tx)?;
            let mut queued = 0;
            for h in &holding {
                if !raised.iter().any(|(k, _, _)| *k == h.key) {
                    let json = serde_json::to_string(&h.payload)
                        .map_err(|e| db::DbError::Corrupt(e.to_string()))?;
                    db::raise_health_condition(&tx, &h.key, now, &json)?;
                    queued += engine::queue(
                        &tx,
                        &setup,
                        &format!("health:{}:{now}:raised", h.key),
                        &h.payload,
                        now,
                    )?;
                    tracing::warn!(condition = %h.key, "health condition raised");
                }
            }
            for (key, since, json) in &raised {
                if holding.iter().any(|h| h.key == *key) {
                    continue;
                }
                let was: Payload =
                    serde_json::from_str(json).map_err(|e| db::DbError::Corrupt(e.to_string()))?;
                let over = conditions::recovered(&was, now);
                queued += engine::queue(
                    &tx,
                    &setup,
                    &format!("health:{key}:{since}:recovered"),
                    &over,
                    now,
                )?;
                db::clear_health_condition(&tx, key)?;
                tracing::info!(condition = %key, "health condition recovered");
            }
            tx.commit()?;
            Ok(queued)
        })
        .await?;
    if queued > 0 {
        state.notifications_queued.notify_one();
    }
    Ok(())
}

/// Sends an occurrence (no recovery follows) to every channel: `condition` with `title` and
/// `message`, about `edge` when known; deduplicated by `key`.
pub async fn occurrence(
    state: &VmState,
    condition: &str,
    key: &str,
    title: String,
    message: String,
    edge: Option<(String, String)>,
) {
    let now = state.clock.wall_ms();
    let mut p = health_alert(
        condition,
        Severity::Warning,
        title,
        message,
        now,
        &state.alerts.link_base,
    );
    p.edge = edge.as_ref().map(|e| e.0.clone());
    p.edge_name = edge.map(|e| e.1);
    let (setup, dedup) = (state.alerts.clone(), format!("health:{condition}:{key}"));
    match state
        .db
        .call(move |c| engine::queue(c, &setup, &dedup, &p, now))
        .await
    {
        Ok(n) if n > 0 => state.notifications_queued.notify_one(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot queue a health notification"),
    }
}
