//! Each edge's latest report of the cameras it found on its LAN.

use protocols::messages::discovery::DiscoveryReport;
use rusqlite::{Connection, params};

use super::DbError;

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryRow {
    /// The edge.
    pub peer_id: String,
    /// What it reported.
    pub report: DiscoveryReport,
    /// When the vm received it, Unix ms.
    pub received_at_ms: u64,
}

/// Stores `report` as `peer`'s latest.
pub fn put_discovery(
    c: &Connection,
    peer: &str,
    report: &DiscoveryReport,
    now_ms: u64,
) -> Result<(), DbError> {
    let json = serde_json::to_string(report).map_err(|e| DbError::Corrupt(e.to_string()))?;
    c.execute(
        "INSERT INTO discovery_reports (peer_id, report_json, received_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(peer_id) DO UPDATE SET report_json = excluded.report_json,
                                            received_at_ms = excluded.received_at_ms",
        params![peer, json, now_ms as i64],
    )?;
    Ok(())
}

/// Every edge's latest report, by edge.
pub fn discovery_reports(c: &Connection) -> Result<Vec<DiscoveryRow>, DbError> {
    let mut st = c.prepare(
        "SELECT peer_id, report_json, received_at_ms FROM discovery_reports ORDER BY peer_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|r| {
        let (peer_id, json, at) = r?;
        Ok(DiscoveryRow {
            peer_id,
            report: serde_json::from_str(&json).map_err(|e| DbError::Corrupt(e.to_string()))?,
            received_at_ms: at as u64,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_report_per_edge() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            crate::db::tests::enrolled(c, "edge-a", 0)?;
            check(c, "edge-a");
            Ok(())
        })
        .unwrap();
    }

    fn check(c: &mut Connection, peer: &str) {
        let mut report = DiscoveryReport {
            enabled: true,
            started_at_ms: 1,
            finished_at_ms: 2,
            scanned: vec!["onvif".into()],
            findings: vec![],
            errors: vec!["x".into()],
        };
        put_discovery(c, peer, &report, 10).unwrap();
        report.errors.clear();
        put_discovery(c, peer, &report, 20).unwrap();
        let rows = discovery_reports(c).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].report, report);
        assert_eq!(rows[0].received_at_ms, 20);
        assert!(
            put_discovery(c, "not-a-device", &report, 1).is_err(),
            "edges only"
        );
    }
}
