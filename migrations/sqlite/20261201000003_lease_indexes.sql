-- A supervisor renews its leases every third of the lease time, and asks which of its jobs
-- have a cancel waiting to be sent: both by owner, over unfinished jobs only.
CREATE INDEX jobs_by_owner ON jobs (lease_owner) WHERE phase <> 'terminal';
CREATE INDEX jobs_cancel_pending ON jobs (lease_owner)
    WHERE cancel_requested_at IS NOT NULL AND cancel_sent_at IS NULL AND phase <> 'terminal';
