-- Sealed events waiting for the vm; the sealed objects are in archive/<event_id>/.
CREATE TABLE archive_outbox (
    event_id        TEXT PRIMARY KEY,
    camera_id       TEXT NOT NULL,
    manifest_json   BLOB NOT NULL,
    total_bytes     INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    refused_reason  TEXT
);
