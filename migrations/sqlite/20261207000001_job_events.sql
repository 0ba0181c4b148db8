-- Provider events (issue 35). `handle_ref` is the remote job's own id as its service's events
-- name it (a Batch job id, a Databricks run id; the handle's JSON text for a provider without
-- events), written with the handle: an event, or `POST /v1/events/poke`, finds its job by it.
-- `poked_at` is when one last did (ms since the Unix epoch, the database's clock); each change
-- of it is appended to `job_changes` with `poke = 1` (the same announcement PostgreSQL makes on
-- the channel `tether_pokes`), and the supervisor that holds the job polls it at once.
ALTER TABLE jobs ADD COLUMN handle_ref TEXT;
ALTER TABLE jobs ADD COLUMN poked_at BIGINT;
CREATE INDEX jobs_handle_ref ON jobs (handle_ref) WHERE phase = 'active';

ALTER TABLE job_changes ADD COLUMN poke INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER jobs_poked AFTER UPDATE ON jobs FOR EACH ROW
    WHEN OLD.poked_at IS NOT NEW.poked_at
BEGIN
    INSERT INTO job_changes (job_id, poke) VALUES (NEW.id, 1);
END;
