-- Mutes (issue 10): a person silences one thread (an update, a pull request, a build: the
-- app and the object a message is about) or one package, from a notification's unsubscribe
-- page, for a while (30 days). The matcher skips their filters' matches on it until then.
CREATE TABLE mutes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    label TEXT NOT NULL,
    until BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mutes_user_kind_value ON mutes (user_id, kind, value);
