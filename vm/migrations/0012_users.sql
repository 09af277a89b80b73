-- The web app (issue 19): users, their sessions, and the review state of events.

-- People who sign in with a name and password. `password_phc` is an Argon2id PHC string;
-- `cameras_json` is NULL for every camera, else a JSON array of camera ids.
CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    password_phc    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    cameras_json    TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    last_sign_in_ms INTEGER
);

-- Bumped by every change of `users`: the revision of the copy the edges hold.
CREATE TABLE users_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO users_revision (id, revision) VALUES (1, 0);

-- Browser sessions, by the SHA-256 of the cookie's value (the value itself is never stored).
-- `user_name` is NULL for a session opened with the owner token.
CREATE TABLE sessions (
    id_sha256     TEXT PRIMARY KEY,
    user_name     TEXT REFERENCES users(name) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);

-- When an owner marked the event reviewed (NULL: not reviewed).
ALTER TABLE events ADD COLUMN reviewed_at_ms INTEGER;
CREATE INDEX events_by_start_desc ON events (started_at_ms DESC, event_id DESC);
