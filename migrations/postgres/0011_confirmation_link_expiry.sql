-- A destination's confirmation link works for a limited time after it was issued
-- (`CONFIRM_TTL_MS` in store/src/preferences/destinations.rs). Links issued before this
-- migration count from the migration.
ALTER TABLE destinations ADD COLUMN confirm_token_at BIGINT;
UPDATE destinations SET confirm_token_at = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
WHERE confirm_token_hash IS NOT NULL;
