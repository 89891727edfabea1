-- Ownership and follows (PostgreSQL): what `$my_groups`, `$my_packages`, `$followed_users` and
-- `$followed_packages` resolve to. Group members and package owners are bus usernames, not
-- account ids: a person who signs up later picks up what they already own.
CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    username TEXT NOT NULL,
    PRIMARY KEY (group_name, username)
);
-- A user's groups.
CREATE INDEX group_members_username ON group_members (username);

CREATE TABLE package_owners (
    package TEXT NOT NULL,
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'group')),
    owner_name TEXT NOT NULL,
    PRIMARY KEY (package, owner_kind, owner_name)
);
-- The packages of a user or group.
CREATE INDEX package_owners_owner ON package_owners (owner_kind, owner_name);

-- What a Tidings user follows: people (bus usernames) and packages.
CREATE TABLE follows (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'package')),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, name)
);
