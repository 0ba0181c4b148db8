-- A generation that repairs the failed one before it in place (`on_retry = "repair"`: the
-- remote job's failed parts run again): the failed generation's handle, as JSON. NULL for a
-- submission. The engine calls the provider's repair, and reconciles a lost answer through
-- its `find_repair`, for a record that has one.
ALTER TABLE jobs ADD COLUMN repair_of TEXT;
