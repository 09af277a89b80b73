-- Cameras each edge found on its LAN (issue 17): the latest report per edge, as the edge sent
-- it (the JSON of protocols' DiscoveryReport: addresses, makers and models, stream URLs
-- without user information; nothing secret), replaced by the next.
CREATE TABLE discovery_reports (
    peer_id        TEXT PRIMARY KEY REFERENCES devices(peer_id),
    report_json    TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
);
