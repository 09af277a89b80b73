-- Sealed thumbnails and household key slots (issue 15).

-- Each event's sealed thumbnail (the age file, which the vm cannot open) and the edge's signed
-- manifest naming it, so a timeline shows the event when the edge is offline.
CREATE TABLE thumbnails (
    event_id       TEXT PRIMARY KEY,
    edge_peer_id   TEXT NOT NULL,
    camera_id      TEXT NOT NULL,
    cid            TEXT NOT NULL,
    sealed         BLOB NOT NULL,
    manifest_json  BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
);

-- The owner's ed25519 signing key (hex), named in every install package: the only key whose
-- key-slot lists an edge applies. Set by the first package that names it.
ALTER TABLE tenant ADD COLUMN owner_signing_key TEXT;

-- Key-slot lists as the owner signed them (CBOR body and signature), one row per version.
-- The vm cannot make or change one: it stores and forwards.
CREATE TABLE key_slot_lists (
    version        INTEGER PRIMARY KEY,
    body           BLOB NOT NULL,
    signature      BLOB NOT NULL,
    uploaded_at_ms INTEGER NOT NULL
);

-- What each edge did with each configuration section: the revision it runs, the last one
-- offered to it, and its reason when it refused that one.
CREATE TABLE config_acks (
    peer_id          TEXT NOT NULL REFERENCES devices(peer_id),
    section          TEXT NOT NULL,
    applied_revision INTEGER,
    offered_revision INTEGER,
    refused_reason   TEXT,
    updated_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (peer_id, section)
);
