-- Edges make their own keys (issue 15). A package names no edge key: until it enrolls, an edge
-- connects as the enrollment identity derived from its token's secret, and the package row
-- keeps that identity's peer id (the allow-list admits it while the package may be used).
ALTER TABLE packages RENAME COLUMN edge_peer_id TO enroll_peer_id;

-- The edge's own X25519 age recipient, sent at enrollment (NULL for devices enrolled before
-- edges made their keys).
ALTER TABLE devices ADD COLUMN age_recipient TEXT;

-- One device per token: a lost answer is answered again, never registered twice.
CREATE UNIQUE INDEX devices_by_token ON devices(token_id);
