-- Delivery rules (issue 10). A person's time zone and quiet hours (minutes after local
-- midnight; none: no quiet hours). A destination's policy, JSON (none: at once, with the
-- default flood limit). Each destination's current flood window: when it started and how
-- many were sent at once in it. Notifications held for a digest are `collected`, out of the
-- queue indexes; a `digest` row, one open per destination, sends them and marks them sent.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE users ADD COLUMN quiet_start BIGINT;
ALTER TABLE users ADD COLUMN quiet_end BIGINT;
ALTER TABLE destinations ADD COLUMN delivery TEXT;
CREATE TABLE delivery_windows (
    destination_id BIGINT PRIMARY KEY REFERENCES destinations(id) ON DELETE CASCADE,
    window_start BIGINT NOT NULL,
    sent BIGINT NOT NULL
);
CREATE INDEX outbox_collected ON outbox (destination_id, id) WHERE status = 'collected';
CREATE UNIQUE INDEX outbox_open_digest ON outbox (destination_id)
WHERE kind = 'digest' AND status IN ('pending', 'sending');
