-- Reconciliation never forgets an archived object (issue 16): an object of the index that S3
-- does not show (an empty listing, a missing bucket, a wrong endpoint) is quarantined with the
-- reason and checked again; it leaves quarantine when S3 shows it again. Nothing deletes an
-- index row but retention.
ALTER TABLE archive_objects ADD COLUMN quarantined_reason TEXT;
ALTER TABLE archive_objects ADD COLUMN quarantined_at_ms INTEGER;
