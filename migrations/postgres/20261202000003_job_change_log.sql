-- SQLite logs job changes in a table (see the SQLite migration of the same name) for other
-- processes to read; PostgreSQL announces them with NOTIFY (20261201000002_job_change_notify).
-- Kept so that both backends have the same migration history.
SELECT 1;
