-- PostgreSQL announces job changes with LISTEN/NOTIFY (see the PostgreSQL migration of the
-- same name); SQLite has no equivalent: one process serves it, and waiters are woken in that
-- process. Kept so that both backends have the same migration history.
SELECT 1;
