//! The archive's upkeep: the retention sweep (archived events past `retain_until_ms`
//! deleted from S3, then from the index), its periodic loop on the vm's clock, and the
//! periodic reconciliation of the index with what the buckets hold, which quarantines what
//! S3 does not show and never forgets it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use guardian_node::{SharedClock, Shutdown};

use super::reindex::{self, Context};
use super::uploads;
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
    periodically(&clock, every, &shutdown, || async {
        if let Err(e) = sweep_retention(&db, &storage, clock.wall_ms()).await {
            tracing::warn!(error = %e, "retention sweep failed; will retry");
        }
    })
    .await
}

/// Runs `pass` at once, then every `every` on `clock`, until `shutdown`.
async fn periodically<F, Fut>(
    clock: &SharedClock,
    every: Duration,
    shutdown: &Shutdown,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        pass().await;
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = clock.sleep(every) => {}
        }
    }
}

/// What a check found of one indexed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// S3 holds it at its size.
    Present,
    /// S3 does not show it (or shows another size): quarantined with this reason.
    Missing(String),
}

/// The verdict on `row` given its bucket's listing (`None`: the bucket was not listed).
pub fn verdict(row: &ArchiveRow, listing: Option<&HashMap<String, u64>>) -> Verdict {
    let Some(listing) = listing else {
        return Verdict::Missing(format!("bucket {} is not listed by S3", row.bucket));
    };
    match listing.get(&row.key) {
        Some(size) if *size == row.size => Verdict::Present,
        Some(size) => Verdict::Missing(format!(
            "S3 holds {} at {size} bytes, the index {}",
            row.key, row.size
        )),
        None if listing.is_empty() => {
            Verdict::Missing(format!("S3 listed bucket {} as empty", row.bucket))
        }
        None => Verdict::Missing(format!("S3 does not list {}", row.key)),
    }
}

/// What one reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Indexed objects S3 holds.
    pub present: usize,
    /// Indexed objects S3 did not show: quarantined (never forgotten).
    pub quarantined: usize,
    /// Quarantined objects S3 shows again: back in service.
    pub released: usize,
    /// Objects under `events/` in S3 that no index row names.
    pub unindexed: usize,
    /// Events re-indexed from their signed manifests.
    pub reindexed: usize,
    /// Events whose objects stay unindexed (no valid manifest, a CID that does not match).
    pub not_reindexed: usize,
}

/// Compares the index with what the buckets hold. An indexed object S3 does not show is
/// quarantined with the reason, never deleted from the index: an empty listing, a bucket
/// missing for a moment or a wrong endpoint must not make the archive forget what it holds.
/// A quarantined object S3 shows again is released. Objects S3 holds under `events/` that
/// the index does not name are re-indexed from their event's signed manifest when it and
/// their CIDs check ([`super::reindex`]); the others are counted and logged.
pub async fn reconcile(
    db: &Db,
    storage: &Storage,
    ctx: &Context,
    now_ms: u64,
) -> anyhow::Result<Reconciled> {
    let indexed = db
        .call(|c| db::archived_objects(c, None, 0, u32::MAX))
        .await?;
    let quarantined: HashSet<String> = db
        .call(|c| db::quarantined_objects(c))
        .await?
        .into_iter()
        .map(|q| q.cid)
        .collect();
    let mut by_bucket: HashMap<String, Vec<ArchiveRow>> = HashMap::new();
    for row in indexed {
        by_bucket.entry(row.bucket.clone()).or_default().push(row);
    }
    let mut listings: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for bucket in storage
        .buckets()
        .await?
        .into_iter()
        .filter(|b| b.starts_with("camera-"))
    {
        let listed = storage.list(&bucket).await?.into_iter().collect();
        listings.insert(bucket, listed);
    }
    let mut done = Reconciled::default();
    let mut not_reindexed = Vec::new();
    for (bucket, rows) in &by_bucket {
        for row in rows {
            match verdict(row, listings.get(bucket)) {
                Verdict::Present => {
                    done.present += 1;
                    if quarantined.contains(&row.cid) {
                        let cid = row.cid.clone();
                        db.call(move |c| db::release_object(c, &cid)).await?;
                        done.released += 1;
                        tracing::info!(event = %row.event_id, key = %row.key, "archived object found again; out of quarantine");
                    }
                }
                Verdict::Missing(reason) => {
                    done.quarantined += 1;
                    if !quarantined.contains(&row.cid) {
                        tracing::warn!(event = %row.event_id, key = %row.key, %reason, "archived object not shown by S3; quarantined (kept in the index, checked again)");
                    }
                    let cid = row.cid.clone();
                    db.call(move |c| db::quarantine_object(c, &cid, &reason, now_ms))
                        .await?;
                }
            }
        }
    }
    for (bucket, listed) in &listings {
        let keys: HashSet<&str> = by_bucket
            .get(bucket)
            .into_iter()
            .flatten()
            .map(|r| r.key.as_str())
            .collect();
        let mut events: Vec<&str> = listed
            .keys()
            .filter(|k| !k.ends_with("manifest.json") && !keys.contains(k.as_str()))
            .filter_map(|k| reindex::event_of(k))
            .collect();
        events.sort_unstable();
        events.dedup();
        for event in events {
            match reindex::reindex_event(db, storage, ctx, bucket, event, listed, now_ms).await? {
                Ok(()) => {
                    done.reindexed += 1;
                    tracing::info!(%bucket, %event, "event re-indexed from its signed manifest");
                }
                Err(refusal) => {
                    done.not_reindexed += 1;
                    tracing::warn!(%bucket, %event, %refusal, "objects in S3 without an index row; not re-indexed");
                    not_reindexed.push(db::Unindexed {
                        bucket: bucket.clone(),
                        event_id: event.to_owned(),
                        reason: refusal.to_string(),
                        seen_at_ms: now_ms,
                    });
                }
            }
        }
        done.unindexed += listed
            .keys()
            .filter(|k| !k.ends_with("manifest.json") && !keys.contains(k.as_str()))
            .count();
    }
    db.call(move |c| db::set_unindexed(c, &not_reindexed))
        .await?;
    Ok(done)
}

/// Reconciles at once, then every `every` on `clock`, until `shutdown`; a failed check (S3
/// unreachable) changes nothing and is tried again at the next tick.
pub async fn reconcile_periodically(
    db: Db,
    storage: std::sync::Arc<Storage>,
    ctx: Context,
    clock: SharedClock,
    every: Duration,
    shutdown: Shutdown,
) {
    periodically(&clock, every, &shutdown, || async {
        // Multipart uploads a crash or a failed transfer left open go first.
        match uploads::clean(&db, &storage).await {
            Ok(c) if c.aborted > 0 || !c.unaborted.is_empty() => tracing::info!(
                aborted = c.aborted,
                unaborted = c.unaborted.len(),
                "open multipart uploads cleaned"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot clean open multipart uploads now; will retry"),
        }
        match reconcile(&db, &storage, &ctx, clock.wall_ms()).await {
            Ok(r) => tracing::info!(
                present = r.present,
                quarantined = r.quarantined,
                released = r.released,
                unindexed = r.unindexed,
                reindexed = r.reindexed,
                not_reindexed = r.not_reindexed,
                "archive index reconciled with S3"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot reconcile the archive index with S3 now; will retry"),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::policy::{bucket_of, object_key};
    use crate::storage::S3Config;
    use guardian_node::ManualClock;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    fn test_ctx() -> Context {
        Context {
            tenant_id: "t".into(),
            retention_days: 90,
        }
    }

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
    async fn reconcile_quarantines_what_s3_does_not_show_and_releases_it_when_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::start(&S3Config::default(), dir.path())
            .await
            .unwrap();
        let db = Db::open_in_memory().unwrap();
        archive(&db, &storage, "ev-kept", T0 + 1).await;
        archive(&db, &storage, "ev-lost", T0 + 1).await;
        let (bucket, lost_key) = (bucket_of("front"), object_key("ev-lost", "clip.mp4.age"));
        storage.delete(&bucket, &lost_key).await.unwrap();
        let r = reconcile(&db, &storage, &test_ctx(), T0).await.unwrap();
        assert_eq!(
            (r.present, r.quarantined, r.released, r.unindexed),
            (1, 1, 0, 0)
        );
        // Never forgotten: the row is there, quarantined with the reason.
        assert!(indexed(&db, "ev-kept").await && indexed(&db, "ev-lost").await);
        let q = db.call(|c| db::quarantined_objects(c)).await.unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].event_id.as_str(), q[0].since_ms), ("ev-lost", T0));
        assert!(q[0].reason.contains("does not list"), "{}", q[0].reason);
        // Checked again later: still missing, still quarantined since the first time.
        reconcile(&db, &storage, &test_ctx(), T0 + 5).await.unwrap();
        let q = db.call(|c| db::quarantined_objects(c)).await.unwrap();
        assert_eq!(q[0].since_ms, T0);
        // Back in S3 (restored, or the bucket reachable again): released.
        storage
            .put_bytes(&bucket, &lost_key, b"sealed".to_vec())
            .await
            .unwrap();
        let r = reconcile(&db, &storage, &test_ctx(), T0 + 10)
            .await
            .unwrap();
        assert_eq!((r.present, r.quarantined, r.released), (2, 0, 1));
        assert!(
            db.call(|c| db::quarantined_objects(c))
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn row(bucket: &str, key: &str, size: u64) -> ArchiveRow {
        ArchiveRow {
            cid: "c".into(),
            event_id: "e".into(),
            kind: "clip".into(),
            camera_id: "front".into(),
            edge_peer_id: "p".into(),
            bucket: bucket.into(),
            key: key.into(),
            size,
            key_id: "k".into(),
            archived_at_ms: 0,
            retain_until_ms: 0,
        }
    }

    #[test]
    fn verdicts_say_why_an_object_is_missing() {
        let r = row("camera-front", "events/e/clip.mp4.age", 6);
        let listing = |items: &[(&str, u64)]| -> HashMap<String, u64> {
            items.iter().map(|(k, s)| (k.to_string(), *s)).collect()
        };
        assert_eq!(
            verdict(&r, Some(&listing(&[("events/e/clip.mp4.age", 6)]))),
            Verdict::Present
        );
        let why = |v: Verdict| match v {
            Verdict::Missing(m) => m,
            Verdict::Present => panic!("present"),
        };
        assert!(why(verdict(&r, None)).contains("not listed"));
        assert!(why(verdict(&r, Some(&listing(&[])))).contains("as empty"));
        assert!(why(verdict(&r, Some(&listing(&[("other", 1)])))).contains("does not list"));
        assert!(
            why(verdict(&r, Some(&listing(&[("events/e/clip.mp4.age", 5)]))))
                .contains("at 5 bytes")
        );
    }
}
