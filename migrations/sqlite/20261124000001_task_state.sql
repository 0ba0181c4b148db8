-- Task state: one row per (scope, key). Same logical schema as migrations/postgres.
--
-- A scope is stored in fixed columns so that clearing a task instance, all map indices of a task,
-- or a whole run is an indexed equality query. Columns a scope kind does not use hold sentinels
-- ('' and -1), never NULL, so that the unique key below works on both backends.
-- Times are milliseconds since the Unix epoch (UTC), set by tether, not by the database.
CREATE TABLE task_state (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    scope_kind  TEXT    NOT NULL CHECK (scope_kind IN ('task_instance', 'task', 'asset')),
    dag_id      TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    task_id     TEXT    NOT NULL,
    map_index   BIGINT  NOT NULL,
    asset       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    expires_at  BIGINT,
    UNIQUE (scope_kind, dag_id, run_id, task_id, map_index, asset, key)
);

-- The garbage collector looks for expired rows only.
CREATE INDEX task_state_expires_at ON task_state (expires_at) WHERE expires_at IS NOT NULL;
