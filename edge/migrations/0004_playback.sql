-- Nonces of playback tokens already accepted, kept until the token expires, so a token is
-- played once even across restarts.
CREATE TABLE playback_nonces (
    nonce          TEXT PRIMARY KEY,
    expires_at_ms  INTEGER NOT NULL,
    event_id       TEXT NOT NULL,
    owner          TEXT NOT NULL,
    used_at_ms     INTEGER NOT NULL
);
CREATE INDEX playback_nonces_by_expiry ON playback_nonces (expires_at_ms);
