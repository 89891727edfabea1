-- Sessions (SQLite): a row exists only for a signed-in user (anonymous forms carry a signed
-- double-submit CSRF token instead, so visitors cost no row), and it ends after an idle
-- time (last_seen_at) as well as at its absolute expiry. The old table held a row per
-- anonymous visitor and no idle time; sessions are short-lived, so it is replaced, not
-- converted: everyone signs in again once.
DROP TABLE sessions;

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Disabling a user ends their sessions; the hourly purge scans by time.
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
