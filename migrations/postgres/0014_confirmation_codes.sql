-- Matrix and IRC destinations are confirmed by a code their owner types in, not a link: a
-- code is short enough to type, so wrong guesses are counted, and after five the code stops
-- working (the owner has a new one sent). A new code starts the count again.
ALTER TABLE destinations ADD COLUMN confirm_failures BIGINT NOT NULL DEFAULT 0;
