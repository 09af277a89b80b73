-- The archive index: every sealed object the vm stored in S3, by CID.
CREATE TABLE archive_objects (
    cid             TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    camera_id       TEXT NOT NULL,
    edge_peer_id    TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    key             TEXT NOT NULL,
    size            INTEGER NOT NULL,
    key_id          TEXT NOT NULL,
    archived_at_ms  INTEGER NOT NULL,
    retain_until_ms INTEGER NOT NULL,
    UNIQUE (event_id, kind)
);
CREATE INDEX archive_objects_by_camera ON archive_objects(camera_id, archived_at_ms);
CREATE INDEX archive_objects_by_retention ON archive_objects(retain_until_ms);

-- One signed manifest per archived event (stored beside the objects as manifest.json).
CREATE TABLE archive_manifests (
    event_id        TEXT PRIMARY KEY,
    camera_id       TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    key             TEXT NOT NULL,
    manifest_json   BLOB NOT NULL,
    archived_at_ms  INTEGER NOT NULL,
    retain_until_ms INTEGER NOT NULL
);
