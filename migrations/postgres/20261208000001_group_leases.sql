-- Group leases (issue 35). A supervisor's lease covers its jobs as a group: its row here holds
-- when that lease runs out (`lease_expires_at`, ms on the database's clock), renewed in one
-- statement however many jobs it holds. A job it holds has `lease_owner` = the supervisor and
-- `lease_expires_at` NULL on the job ("through its supervisor"); a submitter's or `tether run`'s
-- job keeps a lease of its own there, as before. Claiming still increases the job's
-- `lease_epoch`, and every write is still fenced by it.
--
-- `protocol` is the lease protocol the supervisor speaks: 2 for group leases, NULL for a row an
-- older binary wrote (whose jobs' leases are their own, and which would take a group-held job
-- for free). A supervisor refuses to run beside a live one of another protocol; upgrading is:
-- stop all supervisors, migrate, start.
--
-- `claiming` = 0 for a supervisor whose clock is off the database's beyond
-- `supervisor.max_clock_skew`: it claims nothing and is not counted in the fair shares or the
-- rate limits' split, but keeps its group lease alive while it polls what it holds.
ALTER TABLE supervisors ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE supervisors ADD COLUMN protocol BIGINT;
ALTER TABLE supervisors ADD COLUMN claiming BIGINT NOT NULL DEFAULT 1;
