//! Spent playback nonces (table `playback_nonces`): a playback token's nonce is recorded when
//! the token is accepted and kept until the token expires, so a token plays once, even across
//! restarts.

use guardian_sqlite::rusqlite::params;

use super::{Store, StoreError};

impl Store {
    /// Spends a playback token's nonce: true if it was unused (and is now recorded until
    /// `expires_at_ms`), false if already spent. Prunes nonces whose tokens have expired.
    pub fn spend_nonce(
        &mut self,
        nonce: &str,
        expires_at_ms: u64,
        event_id: &str,
        owner: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM playback_nonces WHERE expires_at_ms < ?1",
                [now_ms as i64],
            )?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO playback_nonces (nonce, expires_at_ms, event_id, owner, used_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![nonce, expires_at_ms as i64, event_id, owner, now_ms as i64],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_spent_once_across_reopen_and_pruned_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.sqlite");
        {
            let mut s = Store::open(&p).unwrap();
            assert!(s.spend_nonce("n1", 1000, "e", "o", 10).unwrap());
            assert!(!s.spend_nonce("n1", 1000, "e", "o", 11).unwrap());
        }
        let mut s = Store::open(&p).unwrap();
        assert!(!s.spend_nonce("n1", 1000, "e", "o", 12).unwrap());
        // After n1's expiry it is pruned (its token is refused as expired by then anyway).
        assert!(s.spend_nonce("n2", 5000, "e", "o", 2000).unwrap());
        let left: i64 = s
            .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM playback_nonces", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(left, 1);
    }
}
