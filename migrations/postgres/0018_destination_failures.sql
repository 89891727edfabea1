-- A destination failing for good is paused (issue 10): notifications to it that ended dead
-- one after another, with none sent between, are counted here; at three it is disabled
-- (unconfirmed, with the reason) and its owner told on another of their confirmed
-- destinations by a `notice` row. A notification sent, or confirming it again, resets it.
ALTER TABLE destinations ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
