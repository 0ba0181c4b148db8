-- Provider events (issue 35). `handle_ref` is the remote job's own id as its service's events
-- name it (a Batch job id, a Databricks run id; the handle's JSON text for a provider without
-- events), written with the handle: an event, or `POST /v1/events/poke`, finds its job by it.
-- `poked_at` is when one last did (ms since the Unix epoch, the database's clock); each change
-- of it is announced on the channel `tether_pokes` (payload: the job id), and the supervisor
-- that holds the job polls it at once.
ALTER TABLE jobs ADD COLUMN handle_ref TEXT;
ALTER TABLE jobs ADD COLUMN poked_at BIGINT;
CREATE INDEX jobs_handle_ref ON jobs (handle_ref) WHERE phase = 'active';

CREATE FUNCTION tether_job_poked() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tether_pokes', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_poked AFTER UPDATE ON jobs FOR EACH ROW
    WHEN (OLD.poked_at IS DISTINCT FROM NEW.poked_at)
    EXECUTE FUNCTION tether_job_poked();
