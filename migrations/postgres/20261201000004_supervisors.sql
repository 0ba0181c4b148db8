-- The `tether serve` supervisors alive on this database: each upserts its row at every lease
-- renewal. A supervisor's fair share of the unfinished jobs is divided by the live ones (seen
-- within one lease time), so that one that has just started, and holds nothing yet, counts too
-- and the others hand it part of their jobs.
CREATE TABLE supervisors (
    owner   TEXT    PRIMARY KEY,
    seen_at BIGINT  NOT NULL
);
