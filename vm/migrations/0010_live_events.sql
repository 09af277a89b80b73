-- Events travel as they happen (issue 18): an open record, updates and the closed record of
-- one event; the row keeps the highest revision. Older edges send closed records only
-- (revision 0).
ALTER TABLE events ADD COLUMN state TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE events ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN confirmed_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN zones_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE events ADD COLUMN verification_json TEXT;
