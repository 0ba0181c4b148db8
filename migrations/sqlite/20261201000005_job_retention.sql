-- Job history retention (`jobs.retention`): the GC sweep finds finished jobs by when they
-- finished.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE phase = 'terminal';
