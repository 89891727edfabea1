-- A filter's Atom feed (issue 10) is read at a secret URL: a server-key HMAC of the
-- filter's id and this generation, so no secret is stored. "New feed URL" adds one to the
-- generation, and every URL made with the old one stops working.
ALTER TABLE filters ADD COLUMN feed_generation BIGINT NOT NULL DEFAULT 0;
