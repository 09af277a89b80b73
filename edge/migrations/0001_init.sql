-- guardian-edge database, version 1.

-- Small key-value state: the device configuration received at enrollment.
CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Event records waiting for the vm's ack; a row leaves only on the ack.
CREATE TABLE event_outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    record_json    TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    refused_reason TEXT
);
