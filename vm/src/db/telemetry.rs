//! The telemetry history: a bounded number of reports per edge.

use protocols::messages::telemetry::TelemetryReport;
use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, u};

/// Stores a telemetry report and prunes the edge's history to `keep` reports.
pub fn insert_telemetry(
    c: &mut Connection,
    edge_peer_id: &str,
    report: &TelemetryReport,
    now_ms: u64,
    keep: u32,
) -> Result<(), DbError> {
    let json = serde_json::to_string(report).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO telemetry (edge_peer_id, at_ms, received_at_ms, report_json) VALUES (?1, ?2, ?3, ?4)",
        params![edge_peer_id, report.at_ms as i64, now_ms as i64, json],
    )?;
    tx.execute(
        "DELETE FROM telemetry WHERE edge_peer_id = ?1 AND id <=
            (SELECT id FROM telemetry WHERE edge_peer_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![edge_peer_id, keep],
    )?;
    tx.execute(
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE peer_id = ?1",
        params![edge_peer_id, now_ms as i64],
    )?;
    tx.commit()?;
    Ok(())
}

/// The latest telemetry report of an edge.
pub fn latest_telemetry(
    c: &Connection,
    edge_peer_id: &str,
) -> Result<Option<TelemetryReport>, DbError> {
    let json: Option<String> = c
        .query_row(
            "SELECT report_json FROM telemetry WHERE edge_peer_id = ?1 ORDER BY id DESC LIMIT 1",
            [edge_peer_id],
            |r| r.get(0),
        )
        .optional()?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| DbError::Corrupt(e.to_string())))
        .transpose()
}

/// An edge's reports measured at or after `since_ms`, the latest `limit` of them, oldest
/// first (with the time each was received).
pub fn telemetry_history(
    c: &Connection,
    edge_peer_id: &str,
    since_ms: u64,
    limit: u32,
) -> Result<Vec<(u64, TelemetryReport)>, DbError> {
    let mut stmt = c.prepare(
        "SELECT received_at_ms, report_json FROM telemetry
         WHERE edge_peer_id = ?1 AND at_ms >= ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![edge_peer_id, since_ms.min(i64::MAX as u64) as i64, limit],
        |r| Ok((u(r.get(0)?), r.get::<_, String>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (received, json) = row?;
        let report: TelemetryReport =
            serde_json::from_str(&json).map_err(|e| DbError::Corrupt(e.to_string()))?;
        out.push((received, report));
    }
    out.reverse();
    Ok(out)
}

/// Reports kept for an edge.
pub fn telemetry_count(c: &Connection, edge_peer_id: &str) -> Result<u64, DbError> {
    Ok(u(c.query_row(
        "SELECT COUNT(*) FROM telemetry WHERE edge_peer_id = ?1",
        [edge_peer_id],
        |r| r.get(0),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn telemetry_history_is_bounded() {
        let db = Db::open_in_memory().unwrap();
        db.with(|c| {
            for i in 0..10u64 {
                let r = TelemetryReport {
                    edge_id: "e".into(),
                    at_ms: i,
                    cpu_milli: 1,
                    mem_used_bytes: 1,
                    mem_total_bytes: 2,
                    disk_used_bytes: 1,
                    disk_free_bytes: 1,
                    cameras: vec![],
                    archive_backlog_objects: i,
                    archive_backlog_bytes: 0,
                    event_backlog: 0,
                    events_parked: 0,
                    archive_parked: 0,
                    thumbnails_parked: 0,
                    overlay_path: String::new(),
                };
                insert_telemetry(c, "e", &r, i, 4)?;
            }
            assert_eq!(telemetry_count(c, "e")?, 4);
            assert_eq!(latest_telemetry(c, "e")?.unwrap().at_ms, 9);
            let h = telemetry_history(c, "e", 7, 10)?;
            assert_eq!(
                h.iter().map(|(_, r)| r.at_ms).collect::<Vec<_>>(),
                [7, 8, 9]
            );
            assert_eq!(telemetry_history(c, "e", 0, 2)?.len(), 2);
            Ok(())
        })
        .unwrap();
    }
}
