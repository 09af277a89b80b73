-- Camera events recorded on this edge, with their local clip and snapshot.
CREATE TABLE events (
    event_id       TEXT PRIMARY KEY,
    camera_id      TEXT NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    ended_at_ms    INTEGER NOT NULL,
    category       TEXT NOT NULL,
    score_milli    INTEGER NOT NULL,
    track_json     TEXT NOT NULL,
    clip_path      TEXT,
    snapshot_path  TEXT,
    clip_bytes     INTEGER NOT NULL DEFAULT 0,
    archived       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_by_start ON events (started_at_ms);

-- Each camera's last known state, written by the running agent, read by `camera list`.
CREATE TABLE camera_status (
    camera_id     TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    fps_milli     INTEGER NOT NULL,
    last_error    TEXT,
    updated_at_ms INTEGER NOT NULL
);
