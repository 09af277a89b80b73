-- Camera configuration owned by the vm (issue 17).

-- One row per camera: the edge it runs on, its configuration as pushed (the JSON of
-- protocols' CameraConfig; a password only sealed to that edge), and the edge's camera
-- revision at which it last changed. Camera ids are unique across the tenant's edges.
CREATE TABLE cameras (
    camera_id        TEXT PRIMARY KEY,
    peer_id          TEXT NOT NULL REFERENCES devices(peer_id),
    config_json      TEXT NOT NULL,
    changed_revision INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

-- Each edge's camera revision: one sequence for every change to its cameras (a put or a
-- delete at the vm), pushed as the `cameras` configuration section.
CREATE TABLE camera_revisions (
    peer_id  TEXT PRIMARY KEY REFERENCES devices(peer_id),
    revision INTEGER NOT NULL
);
