-- Which tries of a task instance a job belongs to, for Airflow's clear (see the decision table
-- in src/engine/ensure.rs): `attached_try` is the latest try handed the running job (its
-- submitter, or a later try that reattached; NULL: the submitter, `try_number`), which alone
-- may cancel it; `consumed_try` is the try that took the finished job's result, after which a
-- later try runs the job again.
ALTER TABLE jobs ADD COLUMN attached_try BIGINT;
ALTER TABLE jobs ADD COLUMN consumed_try BIGINT;
