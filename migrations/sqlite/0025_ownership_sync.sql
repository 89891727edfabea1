-- Ownership from the source (issue 13): a periodic sync of package owners from dist-git's
-- owner map and of group members from the account system (FASJSON) writes rows of its own
-- ('sync'), so an admin's import (`tidings ownership import`, the API, the bus's
-- announcements: 'import') and the sync never replace each other's rows. `$my_packages`
-- and `$my_groups` are every source's rows together. SQLite cannot change a CHECK or a
-- primary key in place: both tables are rebuilt.
CREATE TABLE group_members_new (
    group_name TEXT NOT NULL,
    username TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'import' CHECK (source IN ('import', 'provider', 'sync')),
    PRIMARY KEY (group_name, username, source)
);
INSERT INTO group_members_new (group_name, username, source)
SELECT group_name, username, source FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_new RENAME TO group_members;
-- A user's groups.
CREATE INDEX group_members_username ON group_members (username);

CREATE TABLE package_owners_new (
    package TEXT NOT NULL,
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'group')),
    owner_name TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'import' CHECK (source IN ('import', 'sync')),
    PRIMARY KEY (package, owner_kind, owner_name, source)
);
INSERT INTO package_owners_new (package, owner_kind, owner_name, source)
SELECT package, owner_kind, owner_name, 'import' FROM package_owners;
DROP TABLE package_owners;
ALTER TABLE package_owners_new RENAME TO package_owners;
-- The packages of a user or group.
CREATE INDEX package_owners_owner ON package_owners (owner_kind, owner_name);
