-- The provider accounts a task token may ensure jobs on (a JSON list of `[providers.NAME]`
-- names); NULL: every configured account, as for tokens signed before this column.
ALTER TABLE api_tokens ADD COLUMN providers TEXT;
