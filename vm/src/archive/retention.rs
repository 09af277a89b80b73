//! The archive's upkeep: the retention sweep (archived events past `retain_until_ms`
//! deleted from S3, then from the index), its periodic loop on the vm's clock, and the
//! start-up reconciliation of the index with what the buckets hold.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use guardian_node::{SharedClock, Shutdown};

use crate::db::{self, ArchiveRow, Db};
use crate::storage::Storage;

/// Deletes archived events whose retention ended by `now_ms` from S3, then from the index;
/// returns how many events it deleted.
pub async fn sweep_retention(db: &Db, storage: &Storage, now_ms: u64) -> anyhow::Result<usize> {
    let expired = db.call(move |c| db::expired_archives(c, now_ms)).await?;
    let mut n = 0;
    for (event, bucket, keys) in expired {
        for key in &keys {
            storage.delete(&bucket, key).await?;
        }
        let e = event.clone();
        db.call(move |c| db::delete_archive(c, &e)).await?;
        tracing::info!(%event, %bucket, "archived event past retention deleted");
        n += 1;
    }
    Ok(n)
}

/// Sweeps at once, then every `every` on `clock`, until `shutdown`.
pub async fn sweep_periodically(
    db: Db,
    storage: std::sync::Arc<Storage>,
    clock: SharedClock,
    every: Duration,
    shutdown: Shutdown,
) {
    loop {
        if let Err(e) = sweep_retention(&db, &storage, clock.wall_ms()).await {
            tracing::warn!(error = %e, "retention sweep failed; will retry");
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = clock.sleep(every) => {}
        }
    }
}

/// Compares the index with what the buckets hold, at start-up: objects the index names but
/// S3 lacks are dropped from the index (so quota usage is true); objects S3 holds under
/// `events/` that the index does not name are logged (an upload interrupted before its index
/// row; the edge will send that event again). Returns (missing, unindexed).
pub async fn reconcile(db: &Db, storage: &Storage) -> anyhow::Result<(usize, usize)> {
    let indexed = db
        .call(|c| db::archived_objects(c, None, 0, u32::MAX))
        .await?;
    let mut by_bucket: HashMap<String, Vec<ArchiveRow>> = HashMap::new();
    for row in indexed {
        by_bucket.entry(row.bucket.clone()).or_default().push(row);
    }
    let mut missing = 0;
    let mut unindexed = 0;
    let buckets = storage.buckets().await?;
    for bucket in buckets.iter().filter(|b| b.starts_with("camera-")) {
        let listed: HashMap<String, u64> = storage.list(bucket).await?.into_iter().collect();
        let rows = by_bucket.remove(bucket).unwrap_or_default();
        let keys: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        for row in &rows {
            if listed.get(&row.key) != Some(&row.size) {
                missing += 1;
                let e = row.event_id.clone();
                tracing::warn!(event = %e, key = %row.key, "indexed object missing from S3; forgetting the event");
                db.call(move |c| db::delete_archive(c, &e)).await?;
            }
        }
        for key in listed.keys() {
            if !key.ends_with("manifest.json") && !keys.contains(key.as_str()) {
                unindexed += 1;
                tracing::warn!(%bucket, %key, "object in S3 without an index row");
            }
        }
    }
    for (bucket, rows) in by_bucket {
        for row in rows {
            missing += 1;
            let e = row.event_id.clone();
            tracing::warn!(%bucket, event = %e, "indexed bucket missing from S3; forgetting the event");
            db.call(move |c| db::delete_archive(c, &e)).await?;
        }
    }
    Ok((missing, unindexed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::policy::{bucket_of, object_key};
    use crate::storage::S3Config;
    use guardian_node::ManualClock;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    /// Archives event `event` (a clip and its manifest) in S3 and the index, kept until
    /// `retain_until_ms`.
    async fn archive(db: &Db, storage: &Storage, event: &str, retain_until_ms: u64) {
        let bucket = bucket_of("front");
        storage.ensure_bucket(&bucket).await.unwrap();
        let key = object_key(event, "clip.mp4.age");
        storage
            .put_bytes(&bucket, &key, b"sealed".to_vec())
            .await
            .unwrap();
        let manifest_key = object_key(event, "manifest.json");
        storage
            .put_bytes(&bucket, &manifest_key, b"{}".to_vec())
            .await
            .unwrap();
        let row = ArchiveRow {
            cid: format!("cid-{event}"),
            event_id: event.into(),
            kind: "clip".into(),
            camera_id: "front".into(),
            edge_peer_id: "edge".into(),
            bucket,
            key,
            size: 6,
            key_id: "k".into(),
            archived_at_ms: T0,
            retain_until_ms,
        };
        db.call(move |c| db::insert_archive(c, &[row], &manifest_key, b"{}"))
            .await
            .unwrap();
    }

    async fn in_s3(storage: &Storage, event: &str) -> bool {
        storage
            .object_size(&bucket_of("front"), &object_key(event, "clip.mp4.age"))
            .await
            .unwrap()
            .is_some()
    }

    async fn indexed(db: &Db, event: &str) -> bool {
        let e = event.to_owned();
        db.call(move |c| Ok(db::archived_manifest(c, &e)?.is_some()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_sweep_deletes_exactly_the_events_past_retention_as_the_clock_passes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(
            Storage::start(&S3Config::default(), dir.path())
                .await
                .unwrap(),
        );
        let db = Db::open_in_memory().unwrap();
        archive(&db, &storage, "ev-early", T0 + 1_000).await;
        archive(&db, &storage, "ev-late", T0 + 60_000).await;

        let clock = ManualClock::new(T0);
        let shutdown = Shutdown::new();
        let every = Duration::from_secs(1);
        let sweeper = tokio::spawn(sweep_periodically(
            db.clone(),
            storage.clone(),
            clock.shared(),
            every,
            shutdown.clone(),
        ));
        // The first sweep (at T0) ran once the loop sleeps: nothing is due yet.
        let until_asleep = async {
            while clock.sleepers() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), until_asleep)
            .await
            .expect("the sweeper sleeps on the clock");
        assert!(indexed(&db, "ev-early").await && in_s3(&storage, "ev-early").await);

        // One second on: at T0 + 1000 ms the early event's retention has ended.
        clock.advance(every);
        let gone = async {
            while indexed(&db, "ev-early").await {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), gone)
            .await
            .expect("the early event is swept");
        assert!(!in_s3(&storage, "ev-early").await, "its objects left S3");
        assert!(indexed(&db, "ev-late").await, "the late event is kept");
        assert!(in_s3(&storage, "ev-late").await);

        // A direct sweep one ms before the late event's end deletes nothing; at it, the event.
        assert_eq!(
            sweep_retention(&db, &storage, T0 + 59_999).await.unwrap(),
            0
        );
        assert_eq!(
            sweep_retention(&db, &storage, T0 + 60_000).await.unwrap(),
            1
        );
        assert!(!indexed(&db, "ev-late").await && !in_s3(&storage, "ev-late").await);

        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), sweeper)
            .await
            .expect("the sweeper ends on shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn reconcile_forgets_indexed_objects_s3_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::start(&S3Config::default(), dir.path())
            .await
            .unwrap();
        let db = Db::open_in_memory().unwrap();
        archive(&db, &storage, "ev-kept", T0 + 1).await;
        archive(&db, &storage, "ev-lost", T0 + 1).await;
        storage
            .delete(&bucket_of("front"), &object_key("ev-lost", "clip.mp4.age"))
            .await
            .unwrap();
        assert_eq!(reconcile(&db, &storage).await.unwrap(), (1, 0));
        assert!(indexed(&db, "ev-kept").await);
        assert!(!indexed(&db, "ev-lost").await);
    }
}
