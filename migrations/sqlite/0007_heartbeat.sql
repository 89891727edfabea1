-- Heartbeat (SQLite): the health check writes and commits this one row, so a database that
-- answers but cannot write (a full disk) is reported unhealthy. A rolled-back write would pass.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY,
    beat_at INTEGER NOT NULL
);
