-- Default filters (issue 11, "Admin"): templates an admin writes once, with variables
-- ($me, $my_packages, …) that each user's own values fill in. Every enabled one is copied
-- into a new account's filters when the account is made; existing accounts are offered
-- the ones they have not yet added or dismissed. A filter made from one names it
-- (`default_filter`; no foreign key: deleting the template leaves the users' copies).
CREATE TABLE default_filters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    condition TEXT NOT NULL,
    delivery TEXT NOT NULL DEFAULT 'instant',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- What each user did with each template: 'added' (at sign-up or from the dashboard) or
-- 'dismissed'. A template without a row for a user is offered to them.
CREATE TABLE default_filter_offers (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    default_filter_id BIGINT NOT NULL REFERENCES default_filters(id) ON DELETE CASCADE,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (user_id, default_filter_id)
);
ALTER TABLE filters ADD COLUMN default_filter BIGINT;
-- The admin's charts read the archive and the outbox by time.
-- messages_received_at (the charts read messages by arrival time) came with 0021.
CREATE INDEX outbox_created_at ON outbox (created_at);
