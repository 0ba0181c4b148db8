-- Claims find the jobs whose own lease has run out (a submitter's, `tether run`'s) through this
-- index, and those held through a supervisor whose group lease ran out through `jobs_by_owner`,
-- instead of walking every unfinished job (issue 35).
CREATE INDEX jobs_lease_run_out ON jobs (lease_expires_at) WHERE phase <> 'terminal';
