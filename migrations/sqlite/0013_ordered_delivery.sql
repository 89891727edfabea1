-- Notifications to a destination whose channel delivers in order (a webhook: a mirror must
-- see its syncs in the order they happened) are marked `ordered`. Of one destination's
-- ordered rows still to go, only the oldest is `pending` (or `sending`); the rest are
-- `held`, out of the queue indexes, and the next one is made pending in the transaction
-- that records the one before as sent or dead. So one is in flight per destination, a
-- failing one holds the rest back, and a claim never looks at a held row: a backlog behind
-- an endpoint that is down costs the other destinations nothing. Rows of other channels
-- (email, nearly all of them) are unmarked: the index holds only the ordered rows in play.
ALTER TABLE outbox ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET ordered = 1
WHERE kind = 'notification'
  AND destination_id IN (SELECT id FROM destinations WHERE channel = 'webhook');
CREATE INDEX outbox_ordered_open ON outbox (destination_id, id)
WHERE ordered = 1 AND status IN ('pending', 'sending', 'held');
