-- Heartbeat (PostgreSQL): the health check writes and commits this one row, so a database
-- that answers but cannot write (a full disk, a read-only standby) is reported unhealthy.
CREATE TABLE heartbeat (
    id BIGINT PRIMARY KEY,
    beat_at BIGINT NOT NULL
);
