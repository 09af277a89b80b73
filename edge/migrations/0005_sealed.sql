-- Events are kept sealed (issue 15): each has a folder clips/<camera>/<event_id>/ with its
-- sealed objects and signed manifest, which playback streams, the archive uploads and
-- retention deletes. The record as sent (with the objects' CIDs) is kept with the row.
ALTER TABLE events ADD COLUMN objects_dir TEXT;
ALTER TABLE events ADD COLUMN thumbnail_path TEXT;
ALTER TABLE events ADD COLUMN manifest_json BLOB;
ALTER TABLE events ADD COLUMN record_json TEXT;
-- Where an archive row's sealed objects are (NULL: archive/<event_id>/, before this version).
ALTER TABLE archive_outbox ADD COLUMN objects_dir TEXT;
