//! Camera statuses (table `camera_status`): each camera's last known state, written by the
//! running agent, read by `guardian-edge camera list`.

use guardian_sqlite::rusqlite::params;

use super::{Store, StoreError};

/// A camera's status row.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraStatusRow {
    /// The camera.
    pub camera_id: String,
    /// `streaming`, `connecting`, `stalled`, `failed`, `disabled`.
    pub state: String,
    /// Frames per second, thousandths.
    pub fps_milli: u32,
    /// Last error.
    pub last_error: Option<String>,
    /// When written, Unix ms.
    pub updated_at_ms: u64,
}

impl Store {
    /// Writes camera statuses (replacing the whole table).
    pub fn set_camera_statuses(&mut self, rows: &[CameraStatusRow]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM camera_status", [])?;
            for s in rows {
                tx.execute(
                    "INSERT INTO camera_status (camera_id, state, fps_milli, last_error, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        s.camera_id,
                        s.state,
                        s.fps_milli,
                        s.last_error,
                        s.updated_at_ms as i64
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Camera statuses the agent last wrote.
    pub fn camera_statuses(&self) -> Result<Vec<CameraStatusRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT camera_id, state, fps_milli, last_error, updated_at_ms FROM camera_status
                 ORDER BY camera_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(CameraStatusRow {
                    camera_id: r.get(0)?,
                    state: r.get(1)?,
                    fps_milli: r.get(2)?,
                    last_error: r.get(3)?,
                    updated_at_ms: r.get::<_, i64>(4)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: &str) -> CameraStatusRow {
        CameraStatusRow {
            camera_id: id.into(),
            state: state.into(),
            fps_milli: 5_000,
            last_error: (state == "failed").then(|| "no route".into()),
            updated_at_ms: 7,
        }
    }

    #[test]
    fn statuses_replace_the_whole_table() {
        let mut s = Store::open_in_memory().unwrap();
        s.set_camera_statuses(&[row("b", "streaming"), row("a", "failed")])
            .unwrap();
        assert_eq!(
            s.camera_statuses().unwrap(),
            [row("a", "failed"), row("b", "streaming")]
        );
        s.set_camera_statuses(&[row("c", "connecting")]).unwrap();
        assert_eq!(s.camera_statuses().unwrap(), [row("c", "connecting")]);
    }
}
