-- Remote jobs found carrying the same idempotency key as a job tether already tracks (a
-- duplicate submission): a JSON array of their handles, for a person to act on. tether keeps
-- tracking the job in `handle`. NULL when there are none.
ALTER TABLE jobs ADD COLUMN duplicates TEXT;
