-- The WireGuard overlay (issue 20, docs/overlay.md): the peers of the vm's device, the enrolled
-- edges (their key negotiated over /guardian/wg/1) and the owner's devices (registered by an
-- admin). `idx` numbers a peer's overlay addresses (host idx + 1 in both of the overlay's
-- prefixes); AUTOINCREMENT never gives one again, so a removed device's addresses never reach
-- another peer. Edges have their libp2p `peer_id` (their name is the devices table's);
-- devices have a `name`. Keys are WireGuard's base64 of 32 bytes.
CREATE TABLE overlay_peers (
    idx              INTEGER PRIMARY KEY AUTOINCREMENT CHECK (idx >= 1),
    kind             TEXT NOT NULL CHECK (kind IN ('edge', 'device')),
    peer_id          TEXT UNIQUE REFERENCES devices(peer_id) ON DELETE CASCADE,
    name             TEXT UNIQUE,
    public_key       TEXT NOT NULL UNIQUE,
    generation       INTEGER NOT NULL DEFAULT 0,
    api_port         INTEGER NOT NULL DEFAULT 0 CHECK (api_port BETWEEN 0 AND 65535),
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    rotate_requested INTEGER NOT NULL DEFAULT 0 CHECK (rotate_requested IN (0, 1)),
    CHECK ((kind = 'edge') = (peer_id IS NOT NULL)),
    CHECK ((kind = 'device') = (name IS NOT NULL))
);
