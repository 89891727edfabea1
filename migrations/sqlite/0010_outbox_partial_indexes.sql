-- The outbox's queue indexes hold only the rows still in play (issue 9, speed): a pending
-- row is in `outbox_due`, a leased one in `outbox_sending`, a dead one in `outbox_dead`,
-- and a sent row (nearly all of them) in none. Each insert then writes one queue entry
-- instead of two, and a claim or a result moves a row between small, hot indexes.
DROP INDEX outbox_due;
DROP INDEX outbox_sending;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_sending ON outbox (lease_until, id) WHERE status = 'sending';
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';
-- Unsubscribe links now carry the notification's uid and the server key's HMAC of it,
-- checked when the link is opened, so new rows store no digest. Rows queued before keep
-- theirs (and their links work until they expire); only those are indexed.
DROP INDEX outbox_unsubscribe;
CREATE UNIQUE INDEX outbox_unsubscribe ON outbox (unsubscribe_hash) WHERE unsubscribe_hash IS NOT NULL;
