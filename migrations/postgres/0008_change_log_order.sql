-- The change log in commit order (issue 9). Identity values are handed out before commit,
-- so two writers could commit out of id order, and the matcher, having read past the higher
-- id, would skip the lower one for good. Each row is numbered only after taking an advisory
-- lock held until its transaction ends, so rows are numbered in commit order: a reader that
-- sees an id sees every id below it. The lock's keys (class 1414087751, "TIDG"; lock 1, the
-- change log) are named in store/src/dialect.rs. Writers append their rows last, just
-- before committing (store/src/pipeline/changes.rs), so the lock is held only briefly.
CREATE FUNCTION changes_in_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1414087751, 1);
    NEW.id := nextval(pg_get_serial_sequence('changes', 'id'));
    RETURN NEW;
END
$$;

CREATE TRIGGER changes_in_commit_order BEFORE INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION changes_in_commit_order();
