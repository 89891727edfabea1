-- The change log in commit order (issue 9): nothing to do on SQLite, where one writer at a
-- time holds the database, so rows are numbered in commit order already. PostgreSQL's
-- migration 0008 adds a trigger that numbers change rows under a lock held until commit.
SELECT 1;
