-- guardian-vm database, version 1.
CREATE TABLE tenant (
    id                 TEXT PRIMARY KEY,
    created_at_ms      INTEGER NOT NULL,
    kdf_json           TEXT NOT NULL,
    owner_token_sha256 TEXT NOT NULL
);

-- One row per install package; the enrollment token is spent when used_at_ms is set.
CREATE TABLE packages (
    token_id       TEXT PRIMARY KEY,
    edge_peer_id   TEXT NOT NULL,
    edge_name      TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    used_at_ms     INTEGER
);
CREATE INDEX packages_by_peer ON packages(edge_peer_id);

-- Registered edges; later connections are accepted by peer id.
CREATE TABLE devices (
    peer_id        TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    token_id       TEXT NOT NULL REFERENCES packages(token_id),
    recipient      TEXT NOT NULL,
    enrolled_at_ms INTEGER NOT NULL,
    agent_version  TEXT NOT NULL,
    last_seen_ms   INTEGER NOT NULL
);

CREATE TABLE events (
    event_id       TEXT PRIMARY KEY,
    edge_peer_id   TEXT NOT NULL,
    camera_id      TEXT NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    ended_at_ms    INTEGER NOT NULL,
    category       TEXT NOT NULL,
    score_milli    INTEGER NOT NULL,
    clip_id        TEXT,
    snapshot_id    TEXT,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX events_by_time ON events(started_at_ms);
CREATE INDEX events_by_camera_time ON events(camera_id, started_at_ms);

-- A bounded history per edge (pruned on insert).
CREATE TABLE telemetry (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    edge_peer_id   TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    report_json    TEXT NOT NULL
);
CREATE INDEX telemetry_by_edge ON telemetry(edge_peer_id, id);
