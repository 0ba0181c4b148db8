-- Task tokens tether signed: their ids (`jti`) and scopes, never the tokens themselves, so
-- that a token can be listed and revoked (`revoked_at`) on every supervisor sharing the
-- database.
CREATE TABLE api_tokens (
    id          TEXT    PRIMARY KEY,
    dag_id      TEXT    NOT NULL,
    run_id      TEXT,
    task_id     TEXT,
    map_index   BIGINT,
    assets      TEXT    NOT NULL,
    kid         TEXT    NOT NULL,
    issued_by   TEXT    NOT NULL,
    issued_at   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_live ON api_tokens (expires_at) WHERE revoked_at IS NULL;
