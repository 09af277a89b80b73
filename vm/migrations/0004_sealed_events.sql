-- Events name their sealed objects by CID (issue 15); a clip recovered after a crash is
-- marked truncated.
ALTER TABLE events RENAME COLUMN clip_id TO clip_cid;
ALTER TABLE events RENAME COLUMN snapshot_id TO snapshot_cid;
ALTER TABLE events ADD COLUMN thumbnail_cid TEXT;
ALTER TABLE events ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
