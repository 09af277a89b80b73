-- Alerts (issue 18).

-- Settings changed through the API, which win over vm.toml: `mode`, `rules` (JSON).
CREATE TABLE alert_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Each rule decides once per event: fired, or suppressed by its cooldown.
CREATE TABLE alert_decisions (
    event_id    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    decided_at_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, rule)
);

-- When each rule last fired for each camera (its cooldown).
CREATE TABLE alert_cooldowns (
    camera_id     TEXT NOT NULL,
    rule          TEXT NOT NULL,
    last_fired_ms INTEGER NOT NULL,
    PRIMARY KEY (camera_id, rule)
);

-- The outbox: every notification to every channel, until delivered. `id` is the delivery id
-- receivers deduplicate by; (channel, dedup_key) keeps one row per alert and channel.
CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    channel       TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    next_at_ms    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    sent_at_ms    INTEGER,
    UNIQUE (channel, dedup_key)
);
CREATE INDEX notifications_due ON notifications(sent_at_ms, next_at_ms);

-- Health conditions raised and not yet recovered.
CREATE TABLE health_conditions (
    key          TEXT PRIMARY KEY,
    since_ms     INTEGER NOT NULL,
    payload_json TEXT NOT NULL
);
