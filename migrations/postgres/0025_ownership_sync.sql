-- Ownership from the source (issue 13): a periodic sync of package owners from dist-git's
-- owner map and of group members from the account system (FASJSON) writes rows of its own
-- ('sync'), so an admin's import (`tidings ownership import`, the API, the bus's
-- announcements: 'import') and the sync never replace each other's rows. `$my_packages`
-- and `$my_groups` are every source's rows together.
ALTER TABLE group_members DROP CONSTRAINT group_members_source_check;
ALTER TABLE group_members ADD CONSTRAINT group_members_source_check
    CHECK (source IN ('import', 'provider', 'sync'));

ALTER TABLE package_owners ADD COLUMN source TEXT NOT NULL DEFAULT 'import'
    CHECK (source IN ('import', 'sync'));
ALTER TABLE package_owners DROP CONSTRAINT package_owners_pkey;
ALTER TABLE package_owners ADD PRIMARY KEY (package, owner_kind, owner_name, source);
