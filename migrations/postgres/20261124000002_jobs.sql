-- Remote jobs and their event log. Same logical schema in migrations/sqlite and migrations/postgres.
-- Times are milliseconds since the Unix epoch (UTC), set by tether.

-- One row per submission generation of a named job of a task instance.
-- phase: 'submitting' (intent recorded, handle not yet), 'active' (handle recorded, polled),
-- 'terminal' (finished, lost, or failed to submit).
-- The lease columns say which supervisor polls the job; lease_epoch is the fencing value that
-- every write by a lease holder must match.
CREATE TABLE jobs (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id              TEXT    NOT NULL,
    run_id              TEXT    NOT NULL,
    task_id             TEXT    NOT NULL,
    map_index           BIGINT  NOT NULL,
    name                TEXT    NOT NULL,
    generation          BIGINT  NOT NULL,
    idempotency_key     TEXT    NOT NULL UNIQUE,
    provider            TEXT    NOT NULL,
    spec                TEXT    NOT NULL,
    spec_hash           TEXT    NOT NULL,
    try_number          BIGINT  NOT NULL,
    phase               TEXT    NOT NULL CHECK (phase IN ('submitting', 'active', 'terminal')),
    handle              TEXT,
    state               TEXT    NOT NULL,
    raw_state           TEXT,
    message             TEXT,
    url                 TEXT,
    cancel_requested_at BIGINT,
    cancel_reason       TEXT,
    cancel_sent_at      BIGINT,
    next_poll_at        BIGINT  NOT NULL,
    poll_interval_ms    BIGINT  NOT NULL,
    poll_failures       BIGINT  NOT NULL,
    lease_owner         TEXT,
    lease_epoch         BIGINT  NOT NULL,
    lease_expires_at    BIGINT,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    finished_at         BIGINT,
    UNIQUE (dag_id, run_id, task_id, map_index, name, generation)
);

-- Supervisors claim unfinished jobs, soonest poll first.
CREATE INDEX jobs_unfinished ON jobs (next_poll_at) WHERE phase <> 'terminal';

-- Append-only: every transition of a job.
CREATE TABLE job_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  BIGINT  NOT NULL REFERENCES jobs (id),
    at      BIGINT  NOT NULL,
    kind    TEXT    NOT NULL,
    state   TEXT,
    detail  TEXT,
    actor   TEXT    NOT NULL
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);
