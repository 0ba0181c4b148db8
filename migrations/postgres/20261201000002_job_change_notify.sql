-- Every change of a job's state, phase, provider state or cancel request is announced on the
-- channel `tether_jobs` (payload: the job id), so that `/v1/jobs/{id}/wait` in every
-- `tether serve` sharing this database wakes at once, whoever made the change. Lease renewals
-- and polling bookkeeping are not announced.
CREATE FUNCTION tether_job_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tether_jobs', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
       OR OLD.phase IS DISTINCT FROM NEW.phase
       OR OLD.raw_state IS DISTINCT FROM NEW.raw_state
       OR OLD.handle IS DISTINCT FROM NEW.handle
       OR OLD.cancel_requested_at IS DISTINCT FROM NEW.cancel_requested_at
       OR OLD.cancel_sent_at IS DISTINCT FROM NEW.cancel_sent_at)
    EXECUTE FUNCTION tether_job_changed();
