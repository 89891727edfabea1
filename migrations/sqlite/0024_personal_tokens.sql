-- Personal access tokens (issue 11): a person's own tokens for /api/v1, each named by
-- them, scoped (read: look; write: also change), listable and revocable on the account
-- page. Stored as digests only; they go with the account.
CREATE TABLE personal_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX personal_tokens_user_name ON personal_tokens (user_id, name);
