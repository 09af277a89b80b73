-- Events travel as they happen (issue 18): an open record, updates and the closed one each
-- replace the event's row in the outbox; its revision says which one a send carried, so an ack
-- removes the row only if no newer revision came in meanwhile.
ALTER TABLE event_outbox ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
