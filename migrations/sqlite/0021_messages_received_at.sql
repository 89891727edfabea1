-- Filter previews (issue 11) read the archive of the last 7 days: find where it starts
-- without reading the whole table.
CREATE INDEX messages_received_at ON messages (received_at);
