-- Digests per filter (issue 10): a filter may gather its matches into a digest of its own
-- (its `delivery` column holds the digest's settings as JSON instead of 'instant'). A
-- collected notification and its digest carry the filter whose digest it belongs to; 0 is
-- the destination's own digest (its policy, flood summaries, quiet hours). One open digest
-- per destination and filter.
ALTER TABLE outbox ADD COLUMN digest_filter BIGINT NOT NULL DEFAULT 0;
DROP INDEX outbox_open_digest;
CREATE UNIQUE INDEX outbox_open_digest ON outbox (destination_id, digest_filter)
WHERE kind = 'digest' AND status IN ('pending', 'sending');
