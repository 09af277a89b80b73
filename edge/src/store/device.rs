//! Device state: the configuration received at enrollment (table `state`).

use guardian_sqlite::rusqlite::OptionalExtension;
use protocols::messages::enroll::DeviceConfig;

use super::{Store, StoreError, from_json, to_json};

impl Store {
    /// The configuration from enrollment, if enrolled.
    pub fn device_config(&self) -> Result<Option<DeviceConfig>, StoreError> {
        let v: Option<String> = self.with(|c| {
            Ok(c.query_row(
                "SELECT value FROM state WHERE key = 'device_config'",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        v.map(|j| from_json(&j)).transpose()
    }

    /// Records the configuration from enrollment.
    pub fn set_device_config(&self, config: &DeviceConfig) -> Result<(), StoreError> {
        let json = to_json(config)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO state (key, value) VALUES ('device_config', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [json],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_config_is_replaced_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        let mut c = DeviceConfig {
            tenant_id: "t".into(),
            device_id: "d".into(),
            telemetry_interval_secs: 60,
            archive_recipient: "age1x".into(),
            archive_key_id: "k".into(),
        };
        {
            let s = Store::open(&p).unwrap();
            assert_eq!(s.device_config().unwrap(), None);
            s.set_device_config(&c).unwrap();
            c.telemetry_interval_secs = 30;
            s.set_device_config(&c).unwrap();
        }
        assert_eq!(Store::open(&p).unwrap().device_config().unwrap(), Some(c));
    }
}
