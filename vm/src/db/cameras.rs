//! Camera configuration owned by the vm (tables `cameras`, `camera_revisions`): each camera's
//! configuration as pushed to its edge, and each edge's camera revision, bumped by every
//! change to that edge's cameras.

use protocols::messages::config::{CameraConfig, CameraSet};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, u};

/// A stored camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraRow {
    /// The edge it runs on.
    pub peer_id: String,
    /// Its configuration (a password only sealed to the edge).
    pub config: CameraConfig,
    /// The edge's camera revision at which it last changed.
    pub changed_revision: u64,
    /// Last changed at, Unix ms.
    pub updated_at_ms: u64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn parse((peer_id, json, rev, at): (String, String, i64, i64)) -> Result<CameraRow, DbError> {
    Ok(CameraRow {
        peer_id,
        config: serde_json::from_str(&json).map_err(|e| DbError::Corrupt(e.to_string()))?,
        changed_revision: u(rev),
        updated_at_ms: u(at),
    })
}

const COLUMNS: &str = "peer_id, config_json, changed_revision, updated_at_ms";

/// Every camera, by id.
pub fn cameras(c: &Connection) -> Result<Vec<CameraRow>, DbError> {
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM cameras ORDER BY camera_id"))?;
    let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(parse).collect()
}

/// One camera.
pub fn camera(c: &Connection, camera_id: &str) -> Result<Option<CameraRow>, DbError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM cameras WHERE camera_id = ?1"),
        [camera_id],
        row,
    )
    .optional()?
    .map(parse)
    .transpose()
}

/// An edge's camera revision (`None` before its first change).
pub fn camera_revision(c: &Connection, peer_id: &str) -> Result<Option<u64>, DbError> {
    Ok(c.query_row(
        "SELECT revision FROM camera_revisions WHERE peer_id = ?1",
        [peer_id],
        |r| r.get::<_, i64>(0),
    )
    .optional()?
    .map(u))
}

/// An edge's cameras at its latest revision (`None` before its first change).
pub fn camera_set(c: &Connection, peer_id: &str) -> Result<Option<CameraSet>, DbError> {
    let Some(revision) = camera_revision(c, peer_id)? else {
        return Ok(None);
    };
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM cameras WHERE peer_id = ?1 ORDER BY camera_id"
    ))?;
    let rows = st
        .query_map([peer_id], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(CameraSet {
        revision,
        cameras: rows
            .into_iter()
            .map(|r| parse(r).map(|r| r.config))
            .collect::<Result<_, _>>()?,
    }))
}

fn bump(tx: &rusqlite::Transaction<'_>, peer_id: &str) -> Result<u64, DbError> {
    tx.execute(
        "INSERT INTO camera_revisions (peer_id, revision) VALUES (?1, 1)
         ON CONFLICT (peer_id) DO UPDATE SET revision = revision + 1",
        [peer_id],
    )?;
    Ok(u(tx.query_row(
        "SELECT revision FROM camera_revisions WHERE peer_id = ?1",
        [peer_id],
        |r| r.get(0),
    )?))
}

/// Stores `config` as camera `config.id` of edge `peer_id`, in one transaction with the
/// edge's new revision, which it returns. A camera of another edge is moved: that edge's
/// revision is bumped too, so its set loses it.
pub fn put_camera(
    c: &mut Connection,
    peer_id: &str,
    config: &CameraConfig,
    now_ms: u64,
) -> Result<u64, DbError> {
    Ok(
        change_cameras(c, peer_id, std::slice::from_ref(config), &[], now_ms)?
            .expect("one change makes a revision"),
    )
}

/// Stores `upserts` and deletes `removals` (cameras of `peer_id`) in one transaction and one
/// new revision of the edge, which it returns (`None` when there is nothing to change).
pub fn change_cameras(
    c: &mut Connection,
    peer_id: &str,
    upserts: &[CameraConfig],
    removals: &[String],
    now_ms: u64,
) -> Result<Option<u64>, DbError> {
    if upserts.is_empty() && removals.is_empty() {
        return Ok(None);
    }
    let tx = c.transaction()?;
    let revision = bump(&tx, peer_id)?;
    for config in upserts {
        let json = serde_json::to_string(config).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let before: Option<String> = tx
            .query_row(
                "SELECT peer_id FROM cameras WHERE camera_id = ?1",
                [&config.id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(old) = before.filter(|p| p != peer_id) {
            bump(&tx, &old)?;
        }
        tx.execute(
            "INSERT INTO cameras (camera_id, peer_id, config_json, changed_revision, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (camera_id) DO UPDATE SET peer_id = ?2, config_json = ?3,
                changed_revision = ?4, updated_at_ms = ?5",
            params![config.id, peer_id, json, revision as i64, now_ms as i64],
        )?;
    }
    for id in removals {
        tx.execute(
            "DELETE FROM cameras WHERE camera_id = ?1 AND peer_id = ?2",
            params![id, peer_id],
        )?;
    }
    tx.commit()?;
    Ok(Some(revision))
}

/// Deletes a camera; its edge's new revision, or `None` when there was no such camera.
pub fn delete_camera(c: &mut Connection, camera_id: &str) -> Result<Option<u64>, DbError> {
    let tx = c.transaction()?;
    let peer: Option<String> = tx
        .query_row(
            "SELECT peer_id FROM cameras WHERE camera_id = ?1",
            [camera_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(peer) = peer else { return Ok(None) };
    tx.execute("DELETE FROM cameras WHERE camera_id = ?1", [camera_id])?;
    let revision = bump(&tx, &peer)?;
    tx.commit()?;
    Ok(Some(revision))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocols::messages::config::{DetectSettings, RecordSettings};

    /// A valid camera `id` on a test pattern, for tests.
    pub(crate) fn cfg(id: &str) -> CameraConfig {
        CameraConfig {
            id: id.into(),
            name: id.into(),
            url: "test://ball".into(),
            substream_url: None,
            transport: "tcp".into(),
            credential: None,
            enabled: true,
            detect: DetectSettings {
                categories: vec![],
                min_score_milli: 300,
                threshold_milli: 500,
                fps: 5,
                width: 640,
                height: 360,
                zones: vec![],
                masks: vec![],
                verify: true,
            },
            record: RecordSettings {
                pre_roll_secs: 5,
                post_roll_secs: 5,
            },
            onvif: None,
            archive: None,
        }
    }

    #[test]
    fn every_change_is_one_revision_of_its_edge() {
        let db = crate::db::Db::open_in_memory().unwrap();
        db.with(|c| {
            crate::db::tests::enrolled(c, "edge-a", 0)?;
            crate::db::tests::enrolled(c, "edge-b", 0)?;
            Ok(())
        })
        .unwrap();
        db.with(|c| {
            check(c);
            Ok(())
        })
        .unwrap();
    }

    fn check(c: &mut Connection) {
        assert_eq!(camera_set(c, "edge-a").unwrap(), None);
        assert_eq!(put_camera(c, "edge-a", &cfg("porch"), 1).unwrap(), 1);
        assert_eq!(put_camera(c, "edge-a", &cfg("yard"), 2).unwrap(), 2);
        let mut renamed = cfg("porch");
        renamed.name = "Porch".into();
        assert_eq!(put_camera(c, "edge-a", &renamed, 3).unwrap(), 3);
        let set = camera_set(c, "edge-a").unwrap().unwrap();
        assert_eq!(set.revision, 3);
        assert_eq!(set.cameras, vec![renamed, cfg("yard")]);
        assert_eq!(camera(c, "porch").unwrap().unwrap().changed_revision, 3);
        // Moved to another edge: both edges' sets change.
        assert_eq!(put_camera(c, "edge-b", &cfg("yard"), 4).unwrap(), 1);
        assert_eq!(camera_revision(c, "edge-a").unwrap(), Some(4));
        assert_eq!(camera_set(c, "edge-a").unwrap().unwrap().cameras.len(), 1);
        assert_eq!(change_cameras(c, "edge-a", &[], &[], 5).unwrap(), None);
        assert_eq!(delete_camera(c, "porch").unwrap(), Some(5));
        assert_eq!(delete_camera(c, "porch").unwrap(), None);
        let a = camera_set(c, "edge-a").unwrap().unwrap();
        assert_eq!((a.revision, a.cameras.len()), (5, 0));
        assert_eq!(cameras(c).unwrap().len(), 1);
        // Several changes from the box: one revision.
        assert_eq!(
            change_cameras(c, "edge-a", &[cfg("x"), cfg("y")], &["nope".into()], 6).unwrap(),
            Some(6)
        );
        assert_eq!(
            change_cameras(c, "edge-a", &[], &["x".into()], 7).unwrap(),
            Some(7)
        );
        let a = camera_set(c, "edge-a").unwrap().unwrap();
        assert_eq!(a.cameras, vec![cfg("y")]);
    }
}
