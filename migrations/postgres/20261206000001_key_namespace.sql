-- Values of this database that every process sharing it reads, by name.
-- `key_namespace` enters the hash of every idempotency key tether derives (issue 32, finding
-- 3): two deployments (staging and production, or a database rebuilt from nothing) that run
-- the same DAG against one account then compute different keys, and never adopt each other's
-- remote jobs. It is made once, at random, when the database is first migrated; the
-- configuration's `jobs.key_namespace` overrides it (to share keys on purpose, or to keep them
-- across a rebuild). Jobs recorded earlier keep the keys they were recorded with.
CREATE TABLE tether_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO tether_settings (name, value)
VALUES ('key_namespace', md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text));
