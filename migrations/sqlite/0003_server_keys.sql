-- Server keys (SQLite): random secrets the hub makes once and every process shares, e.g.
-- the key that signs anonymous forms' CSRF tokens and derives unsubscribe tokens. Kept in
-- the database, not a file, so that web processes on other hosts agree on them.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
