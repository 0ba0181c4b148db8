-- Every change of a job's state, phase, provider state, handle or cancel request is appended
-- to `job_changes` (the job id; the same changes PostgreSQL announces with NOTIFY), so that
-- each `tether serve` on this database wakes the waiters of the jobs another process changed:
-- it reads the rows added since its last look whenever `PRAGMA data_version` says another
-- connection committed, and prunes all but the latest 10,000. Lease renewals and polling
-- bookkeeping are not logged.
CREATE TABLE job_changes (
    id      INTEGER PRIMARY KEY,
    job_id  BIGINT  NOT NULL
);

CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs FOR EACH ROW
    WHEN OLD.state IS NOT NEW.state
      OR OLD.phase IS NOT NEW.phase
      OR OLD.raw_state IS NOT NEW.raw_state
      OR OLD.handle IS NOT NEW.handle
      OR OLD.cancel_requested_at IS NOT NEW.cancel_requested_at
      OR OLD.cancel_sent_at IS NOT NEW.cancel_sent_at
BEGIN
    INSERT INTO job_changes (job_id) VALUES (NEW.id);
END;
