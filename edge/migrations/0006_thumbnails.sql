-- Each event's sealed thumbnail goes to the vm beside its record (issue 15), on its own
-- stream: a row waits here until the vm has stored it, or parks with the vm's reason.
CREATE TABLE thumbnail_outbox (
    event_id TEXT PRIMARY KEY,
    objects_dir TEXT NOT NULL,
    manifest_json BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    refused_reason TEXT
);
