-- The household's users as the vm synced them (issue 19): who may sign in to the edge's LAN
-- web app, with the Argon2id hash of their password, their role and their cameras (JSON
-- array; NULL for every camera). Replaced whole by each newer revision of the users section;
-- the revision applied is in `state` under `users_revision`.
CREATE TABLE local_users (
    name          TEXT PRIMARY KEY,
    password_phc  TEXT NOT NULL,
    role          TEXT NOT NULL,
    cameras_json  TEXT
);
