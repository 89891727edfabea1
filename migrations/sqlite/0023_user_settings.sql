-- Settings (issue 11): the delivery a person's new destinations start with (a JSON
-- DeliveryPolicy; NULL: the site's `[delivery]`). Pausing everything is a mute of kind
-- 'everything' in the mutes table, so it needs no column.
ALTER TABLE users ADD COLUMN default_delivery TEXT;
