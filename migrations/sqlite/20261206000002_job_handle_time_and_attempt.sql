-- When the job's handle was recorded (ms since the Unix epoch; NULL for jobs recorded before
-- this column, whose intent time stands in). A "not found" from the provider within the
-- account's `not_found_grace` of it is read as "not visible yet" (an eventually consistent
-- read right after create), not as an end (issue 32, finding 2).
ALTER TABLE jobs ADD COLUMN handle_at BIGINT;
-- Which submission attempt of its generation the record is: 1, and one more each time a
-- submission the provider refused (it made nothing) is sent again. Each attempt after the first
-- is sent with a key of its own, derived from the generation's and the attempt: a token the
-- provider remembers with its refusal (an ECS RunTask that placed no task answers the same
-- for 24 hours) would otherwise refuse every retry (issue 32, finding 5).
ALTER TABLE jobs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
