//! Multipart uploads a crash or a failed transfer left open: the journal the storage writes
//! them to (the `multipart_uploads` table), and the cleanup that aborts them at start and at
//! every reconciliation. S3 servers that list open uploads (MinIO, radosgw, AWS) have those
//! aborted too; the embedded s3s-fs cannot list them, which is why the journal exists. What
//! could not be aborted, and parts on the embedded server's disk that no upload of this
//! process writes, are reported in health.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use guardian_node::SharedClock;
use serde::Serialize;

use crate::db::{self, Db, JournaledUpload};
use crate::storage::{Storage, StrayParts, UploadJournal};

/// The journal in the vm's database.
pub struct DbJournal {
    /// The database.
    pub db: Db,
    /// For the start time of each upload.
    pub clock: SharedClock,
}

impl UploadJournal for DbJournal {
    fn started<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let (b, k, u, now) = (
            bucket.to_owned(),
            key.to_owned(),
            upload_id.to_owned(),
            self.clock.wall_ms(),
        );
        async move {
            self.db
                .call(move |c| db::upload_started(c, &u, &b, &k, now))
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn ended<'a>(&'a self, upload_id: &'a str) -> BoxFuture<'a, ()> {
        let u = upload_id.to_owned();
        async move {
            if let Err(e) = self.db.call(move |c| db::upload_ended(c, &u)).await {
                // The row stays; the next cleanup finds the upload gone and removes it.
                tracing::warn!(error = %e, "cannot take an upload out of the journal");
            }
        }
        .boxed()
    }
}

/// What a cleanup did and left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cleaned {
    /// Uploads aborted now.
    pub aborted: u64,
    /// Journaled uploads whose abort failed (kept, tried again).
    pub unaborted: Vec<JournaledUpload>,
    /// Parts on the embedded server's disk no upload of this process writes.
    pub stray_parts: StrayParts,
}

/// Aborts every journaled upload this process is not writing, and every upload S3 lists
/// open in a camera bucket that this process is not writing.
pub async fn clean(db: &Db, storage: &Arc<Storage>) -> anyhow::Result<Cleaned> {
    let mut done = Cleaned::default();
    for up in db.call(|c| db::journaled_uploads(c)).await? {
        if storage.is_active(&up.upload_id) {
            continue;
        }
        match storage
            .abort_upload(&up.bucket, &up.key, &up.upload_id)
            .await
        {
            Ok(()) => {
                let id = up.upload_id.clone();
                db.call(move |c| db::upload_ended(c, &id)).await?;
                tracing::info!(bucket = %up.bucket, key = %up.key, upload = %up.upload_id, "aborted a multipart upload left open");
                done.aborted += 1;
            }
            Err(e) => {
                let (id, error) = (up.upload_id.clone(), e.to_string());
                db.call(move |c| db::upload_abort_failed(c, &id, &error))
                    .await?;
                tracing::warn!(upload = %up.upload_id, error = %e, "cannot abort a multipart upload; will retry");
                done.unaborted.push(JournaledUpload {
                    abort_error: Some(e.to_string()),
                    ..up
                });
            }
        }
    }
    for bucket in storage
        .buckets()
        .await?
        .into_iter()
        .filter(|b| b.starts_with("camera-"))
    {
        let Some(open) = storage.open_uploads(&bucket).await else {
            continue;
        };
        for (key, id) in open {
            if storage.is_active(&id) {
                continue;
            }
            match storage.abort_upload(&bucket, &key, &id).await {
                Ok(()) => {
                    tracing::info!(%bucket, %key, upload = %id, "aborted a multipart upload S3 listed open");
                    done.aborted += 1;
                }
                Err(e) => {
                    tracing::warn!(%bucket, %key, upload = %id, error = %e, "cannot abort a multipart upload S3 lists")
                }
            }
        }
    }
    done.stray_parts = storage.embedded_stray_parts();
    if done.stray_parts.uploads > 0 {
        tracing::warn!(
            uploads = done.stray_parts.uploads,
            bytes = done.stray_parts.bytes,
            "stray multipart parts on the embedded S3 server's disk"
        );
    }
    Ok(done)
}
