-- OpenID Connect sign-in (issue 11). An account that signs in through the provider is
-- marked as the provider's (`from_provider`): it has no password, no local sign-up or
-- `tidings user add` can take its name, and the provider's subject (`sub` claim) that
-- claimed it is kept, so another person the provider later gives the same username cannot
-- take it over. An admin may create one before its first sign-in (subject still empty).
ALTER TABLE users ADD COLUMN from_provider BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN provider_subject TEXT;
CREATE UNIQUE INDEX users_provider_subject ON users (provider_subject);

-- Where a group membership comes from: an ownership import or command ('import'), or the
-- groups claim of the user's last sign-in through the provider ('provider'). Imports never
-- touch the provider's rows and sign-ins never touch the imported ones; `$my_groups` is
-- both. SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE group_members_new (
    group_name TEXT NOT NULL,
    username TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'import' CHECK (source IN ('import', 'provider')),
    PRIMARY KEY (group_name, username, source)
);
INSERT INTO group_members_new (group_name, username, source)
SELECT group_name, username, 'import' FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_new RENAME TO group_members;
-- A user's groups.
CREATE INDEX group_members_username ON group_members (username);
