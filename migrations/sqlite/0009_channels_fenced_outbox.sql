-- Channels and the fenced outbox (issue 9).
-- Destinations carry typed per-channel settings, a versioned JSON enum (email has none yet).
ALTER TABLE destinations ADD COLUMN settings TEXT NOT NULL DEFAULT '{"kind":"email/1"}';
-- Each claim writes a fresh token on its row; recording an outcome only counts while the
-- token is still the row's, so a send that outlived its lease cannot overwrite a newer one.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
-- Payloads become a versioned enum: the old `{"token": …}` of a confirmation is tagged.
UPDATE outbox SET payload = json_object('kind', 'confirmation/1', 'token', json_extract(payload, '$.token'))
 WHERE payload IS NOT NULL AND json_extract(payload, '$.kind') IS NULL AND json_extract(payload, '$.token') IS NOT NULL;
-- Claims take the due rows of one destination together.
CREATE INDEX outbox_sending ON outbox (status, lease_until);
