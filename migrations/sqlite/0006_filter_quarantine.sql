-- Quarantined filters (SQLite). A filter whose stored row cannot be read (corrupt or too
-- deep a condition, an unknown delivery, written by an older version or by hand) is set
-- aside by the matcher instead of stopping matching for everyone: matching skips it, its
-- owner and the admin see why, and saving the filter again (or deleting it) lifts it.
ALTER TABLE filters ADD COLUMN quarantined_at BIGINT;
ALTER TABLE filters ADD COLUMN quarantine_reason TEXT;
CREATE INDEX filters_quarantined ON filters (quarantined_at) WHERE quarantined_at IS NOT NULL;
