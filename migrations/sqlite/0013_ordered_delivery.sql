-- Notifications to a destination whose channel delivers in order (a webhook: a mirror must
-- see its syncs in the order they happened) are marked `ordered`: such a row is claimed
-- only once every earlier row of its destination is sent or dead, so one is in flight per
-- destination and a failing one holds the rest back until it goes through. Rows of other
-- channels (email, nearly all of them) are unmarked and pay nothing: the index holds only
-- the ordered rows still in play.
ALTER TABLE outbox ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET ordered = 1
WHERE kind = 'notification'
  AND destination_id IN (SELECT id FROM destinations WHERE channel = 'webhook');
CREATE INDEX outbox_ordered_open ON outbox (destination_id, id)
WHERE ordered = 1 AND status IN ('pending', 'sending');
