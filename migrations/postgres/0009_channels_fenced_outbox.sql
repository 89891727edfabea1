-- Channels and the fenced outbox (issue 9).
-- Destinations carry typed per-channel settings, a versioned JSON enum (email has none yet).
ALTER TABLE destinations ADD COLUMN settings TEXT NOT NULL DEFAULT '{"kind":"email/1"}';
-- Each claim writes a fresh token on its row; recording an outcome only counts while the
-- token is still the row's, so a send that outlived its lease cannot overwrite a newer one.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
-- Payloads become a versioned enum: the old `{"token": …}` of a confirmation is tagged.
UPDATE outbox SET payload = jsonb_build_object('kind', 'confirmation/1', 'token', payload::jsonb ->> 'token')::text
 WHERE payload IS NOT NULL AND NOT (payload::jsonb ? 'kind') AND (payload::jsonb ? 'token');
-- The statuses the store's enum maps to, and nothing else.
ALTER TABLE outbox ADD CONSTRAINT outbox_status_known
  CHECK (status IN ('pending', 'sending', 'sent', 'dead'));
CREATE INDEX outbox_sending ON outbox (status, lease_until);
