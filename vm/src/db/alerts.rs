//! Alert state: the mode and the rules set through the API, each rule's decision per event,
//! its cooldown per camera, the notification outbox, and the health conditions raised.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// The delivery id (`X-Guardian-Delivery`).
    pub id: String,
    /// `webhook:<name>`, `ntfy:<name>`, `smtp` or `mqtt`.
    pub channel: String,
    /// What it is per channel (`event:<id>:<rule>`, `health:<key>:<since>:raised`, ...).
    pub dedup_key: String,
    /// `event`, `health` or `mqtt_event`.
    pub kind: String,
    /// Its payload, JSON.
    pub payload_json: String,
    /// Queued at, Unix ms.
    pub created_at_ms: u64,
    /// Next attempt at, Unix ms.
    pub next_at_ms: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Delivered at, Unix ms.
    pub sent_at_ms: Option<u64>,
}

fn setting(c: &Connection, key: &str) -> Result<Option<String>, DbError> {
    Ok(c.query_row(
        "SELECT value FROM alert_settings WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()?)
}

fn set_setting(c: &Connection, key: &str, value: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO alert_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The mode set through the API, if any.
pub fn alert_mode(c: &Connection) -> Result<Option<String>, DbError> {
    setting(c, "mode")
}

/// Sets the mode.
pub fn set_alert_mode(c: &Connection, mode: &str) -> Result<(), DbError> {
    set_setting(c, "mode", mode)
}

/// The rules set through the API (JSON), if any.
pub fn alert_rules_json(c: &Connection) -> Result<Option<String>, DbError> {
    setting(c, "rules")
}

/// Stores the rules (JSON).
pub fn set_alert_rules_json(c: &Connection, json: &str) -> Result<(), DbError> {
    set_setting(c, "rules", json)
}

/// Whether `rule` decided on `event` already.
pub fn alert_decided(c: &Connection, event: &str, rule: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT 1 FROM alert_decisions WHERE event_id = ?1 AND rule = ?2",
        params![event, rule],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// Records `rule`'s decision on `event` (`fired` or `cooldown`).
pub fn record_alert_decision(
    c: &Connection,
    event: &str,
    rule: &str,
    outcome: &str,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT OR IGNORE INTO alert_decisions (event_id, rule, outcome, decided_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![event, rule, outcome, now_ms as i64],
    )?;
    Ok(())
}

/// When `rule` last fired for `camera`.
pub fn alert_last_fired(c: &Connection, camera: &str, rule: &str) -> Result<Option<u64>, DbError> {
    Ok(c.query_row(
        "SELECT last_fired_ms FROM alert_cooldowns WHERE camera_id = ?1 AND rule = ?2",
        params![camera, rule],
        |r| r.get::<_, i64>(0),
    )
    .optional()?
    .map(|t| t as u64))
}

/// Notes that `rule` fired for `camera` at `now_ms`.
pub fn set_alert_fired(
    c: &Connection,
    camera: &str,
    rule: &str,
    now_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO alert_cooldowns (camera_id, rule, last_fired_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(camera_id, rule) DO UPDATE SET last_fired_ms = excluded.last_fired_ms",
        params![camera, rule, now_ms as i64],
    )?;
    Ok(())
}

/// Queues a notification for `channel` unless one with the same `dedup_key` is there
/// already; returns whether it was queued.
pub fn enqueue_notification(
    c: &Connection,
    channel: &str,
    dedup_key: &str,
    kind: &str,
    payload_json: &str,
    now_ms: u64,
) -> Result<bool, DbError> {
    let id = {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        format!("dl-{}", data_encoding::HEXLOWER.encode(&b))
    };
    Ok(c.execute(
        "INSERT OR IGNORE INTO notifications (id, channel, dedup_key, kind, payload_json,
             created_at_ms, next_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![id, channel, dedup_key, kind, payload_json, now_ms as i64],
    )? > 0)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        dedup_key: r.get(2)?,
        kind: r.get(3)?,
        payload_json: r.get(4)?,
        created_at_ms: r.get::<_, i64>(5)? as u64,
        next_at_ms: r.get::<_, i64>(6)? as u64,
        attempts: r.get::<_, i64>(7)? as u32,
        last_error: r.get(8)?,
        sent_at_ms: r.get::<_, Option<i64>>(9)?.map(|t| t as u64),
    })
}

const COLUMNS: &str = "id, channel, dedup_key, kind, payload_json, created_at_ms, next_at_ms, \
                       attempts, last_error, sent_at_ms";

/// Undelivered notifications due at `now_ms`, oldest first.
pub fn due_notifications(
    c: &Connection,
    now_ms: u64,
    limit: u32,
) -> Result<Vec<NotificationRow>, DbError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE sent_at_ms IS NULL AND next_at_ms <= ?1
         ORDER BY created_at_ms, rowid LIMIT ?2"
    ))?;
    let rows = st.query_map(params![now_ms as i64, limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The earliest next attempt of an undelivered notification.
pub fn next_notification_at(c: &Connection) -> Result<Option<u64>, DbError> {
    Ok(c.query_row(
        "SELECT MIN(next_at_ms) FROM notifications WHERE sent_at_ms IS NULL",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )?
    .map(|t| t as u64))
}

/// Marks a notification delivered.
pub fn notification_sent(c: &Connection, id: &str, now_ms: u64) -> Result<(), DbError> {
    c.execute(
        "UPDATE notifications SET sent_at_ms = ?2, attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
        params![id, now_ms as i64],
    )?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub fn notification_failed(
    c: &Connection,
    id: &str,
    error: &str,
    next_at_ms: u64,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = ?2, next_at_ms = ?3
         WHERE id = ?1",
        params![id, error, next_at_ms as i64],
    )?;
    Ok(())
}

/// The latest `limit` notifications (newest first), optionally of one channel.
pub fn notifications(
    c: &Connection,
    channel: Option<&str>,
    limit: u32,
) -> Result<Vec<NotificationRow>, DbError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE (?1 IS NULL OR channel = ?1)
         ORDER BY created_at_ms DESC, rowid DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![channel, limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Forgets delivered notifications older than `before_ms`, and decisions older than that.
pub fn prune_notifications(c: &Connection, before_ms: u64) -> Result<usize, DbError> {
    let n = c.execute(
        "DELETE FROM notifications WHERE sent_at_ms IS NOT NULL AND sent_at_ms < ?1",
        [before_ms as i64],
    )?;
    c.execute(
        "DELETE FROM alert_decisions WHERE decided_at_ms < ?1",
        [before_ms as i64],
    )?;
    Ok(n)
}

/// The health conditions raised: (key, since, payload JSON).
pub fn health_conditions(c: &Connection) -> Result<Vec<(String, u64, String)>, DbError> {
    let mut st =
        c.prepare("SELECT key, since_ms, payload_json FROM health_conditions ORDER BY key")?;
    let rows = st.query_map([], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a condition raised.
pub fn raise_health_condition(
    c: &Connection,
    key: &str,
    since_ms: u64,
    payload_json: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT OR REPLACE INTO health_conditions (key, since_ms, payload_json) VALUES (?1, ?2, ?3)",
        params![key, since_ms as i64, payload_json],
    )?;
    Ok(())
}

/// Forgets a condition that recovered.
pub fn clear_health_condition(c: &Connection, key: &str) -> Result<(), DbError> {
    c.execute("DELETE FROM health_conditions WHERE key = ?1", [key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn the_outbox_keeps_one_row_per_alert_and_channel_and_retries() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            assert!(enqueue_notification(
                c,
                "webhook:a",
                "event:e1:r",
                "event",
                "{}",
                10
            )?);
            assert!(
                !enqueue_notification(c, "webhook:a", "event:e1:r", "event", "{}", 11)?,
                "once"
            );
            assert!(enqueue_notification(
                c,
                "ntfy:b",
                "event:e1:r",
                "event",
                "{}",
                12
            )?);
            let due = due_notifications(c, 20, 10)?;
            assert_eq!(due.len(), 2);
            assert!(due[0].id.starts_with("dl-") && due[0].id != due[1].id);
            notification_failed(c, &due[0].id, "connection refused", 100)?;
            notification_sent(c, &due[1].id, 21)?;
            assert!(due_notifications(c, 50, 10)?.is_empty());
            assert_eq!(next_notification_at(c)?, Some(100));
            let again = due_notifications(c, 100, 10)?;
            assert_eq!(
                (again[0].attempts, again[0].last_error.as_deref()),
                (1, Some("connection refused"))
            );
            assert_eq!(notifications(c, None, 10)?.len(), 2);
            assert_eq!(
                notifications(c, Some("ntfy:b"), 10)?[0].sent_at_ms,
                Some(21)
            );
            assert_eq!(prune_notifications(c, 22)?, 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn settings_decisions_cooldowns_and_conditions() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            assert_eq!(alert_mode(c)?, None);
            set_alert_mode(c, "home")?;
            set_alert_mode(c, "off")?;
            assert_eq!(alert_mode(c)?.as_deref(), Some("off"));
            assert!(!alert_decided(c, "e", "r")?);
            record_alert_decision(c, "e", "r", "fired", 1)?;
            assert!(alert_decided(c, "e", "r")?);
            assert_eq!(alert_last_fired(c, "porch", "r")?, None);
            set_alert_fired(c, "porch", "r", 5)?;
            set_alert_fired(c, "porch", "r", 9)?;
            assert_eq!(alert_last_fired(c, "porch", "r")?, Some(9));
            raise_health_condition(c, "edge_offline:p", 3, "{}")?;
            assert_eq!(health_conditions(c)?.len(), 1);
            clear_health_condition(c, "edge_offline:p")?;
            assert!(health_conditions(c)?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
