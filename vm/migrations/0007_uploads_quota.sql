-- Multipart uploads in flight (issue 16): each upload id is written here right after S3 made
-- it and removed once it completed or was aborted, so that uploads a crash left open are
-- aborted at the next start (the embedded s3s-fs cannot list them). A row that could not be
-- aborted stays, with the error, and is reported in health.
CREATE TABLE multipart_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    abort_error TEXT
);

-- The last archive refused for a camera's quota; cleared when an archive of that camera is
-- stored again. Reported in health.
CREATE TABLE quota_refusals (
    camera_id TEXT PRIMARY KEY,
    refused_at_ms INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL,
    needed_bytes INTEGER NOT NULL,
    quota_bytes INTEGER NOT NULL
);

-- Events whose objects S3 holds without index rows and that the last reconciliation could not
-- re-index from a signed manifest (replaced at every reconciliation). Reported in health.
CREATE TABLE unindexed_events (
    bucket TEXT NOT NULL,
    event_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (bucket, event_id)
);
