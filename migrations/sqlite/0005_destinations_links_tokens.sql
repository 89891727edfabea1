-- Issue 8 hardening (SQLite): an address belongs to one account, confirmation mails are
-- rate-limited, unsubscribe links carry a hashed secret of their own, API tokens have a scope.

-- Addresses are compared by a key: the whole address lower-cased (people type the local
-- part in any case, and providers treat it case-insensitively). Per account, one row per
-- key; the kept row is a confirmed one, else the oldest.
ALTER TABLE destinations ADD COLUMN address_key TEXT NOT NULL DEFAULT '';
UPDATE destinations SET address_key = lower(address);
DELETE FROM destinations WHERE EXISTS (
    SELECT 1 FROM destinations d2
    WHERE d2.user_id = destinations.user_id AND d2.channel = destinations.channel
      AND d2.address_key = destinations.address_key AND d2.id <> destinations.id
      AND ((d2.confirmed_at IS NOT NULL AND destinations.confirmed_at IS NULL)
        OR ((d2.confirmed_at IS NULL) = (destinations.confirmed_at IS NULL) AND d2.id < destinations.id)));
CREATE UNIQUE INDEX destinations_owner_address ON destinations (user_id, channel, address_key);

-- A confirmed address belongs to one account: where several accounts had confirmed one,
-- the first to confirm keeps it and the others must confirm again (and will be refused).
UPDATE destinations SET confirmed_at = NULL WHERE confirmed_at IS NOT NULL AND EXISTS (
    SELECT 1 FROM destinations d2
    WHERE d2.channel = destinations.channel AND d2.address_key = destinations.address_key
      AND d2.confirmed_at IS NOT NULL AND d2.id <> destinations.id
      AND (d2.confirmed_at < destinations.confirmed_at
        OR (d2.confirmed_at = destinations.confirmed_at AND d2.id < destinations.id)));
CREATE UNIQUE INDEX destinations_confirmed_address ON destinations (channel, address_key)
    WHERE confirmed_at IS NOT NULL;

-- Every confirmation mail queued, by account and by address key, for the rate limits. Not
-- tied to destinations: deleting and re-adding an address must not reset its count.
CREATE TABLE confirmation_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    address_key TEXT NOT NULL,
    sent_at BIGINT NOT NULL
);
CREATE INDEX confirmation_sends_user ON confirmation_sends (user_id, sent_at);
CREATE INDEX confirmation_sends_address ON confirmation_sends (channel, address_key, sent_at);

-- A notification's unsubscribe secret is a server-key HMAC of its uid (the uid is public:
-- it is the Message-ID); only its SHA-256 digest is kept. Rows queued before this
-- migration have none, so their links stop working.
ALTER TABLE outbox ADD COLUMN unsubscribe_hash TEXT;
CREATE UNIQUE INDEX outbox_unsubscribe ON outbox (unsubscribe_hash);

-- What an API token may do: publish messages, import ownership, or both (admin). Tokens
-- made before scopes existed could only publish.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'publish'
    CHECK (scope IN ('publish', 'ownership', 'admin'));
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
