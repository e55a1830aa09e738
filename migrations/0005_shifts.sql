-- Shift records (issue 11): every login to logout of a unit. One row per
-- shift, keyed by (ident_id, start_at); at most one open shift per unit.
-- The columns reports filter and sort on are columns; the rest of the shift
-- (segments: time per status, gaps, how it opened) is its JSON in `shift`.
CREATE TABLE shifts (
    id          INTEGER PRIMARY KEY,
    ident_id    INTEGER NOT NULL,            -- the unit's ident id
    acc_id      TEXT    NOT NULL DEFAULT '', -- the CAD account, '' when unknown
    unit_num    TEXT    NOT NULL DEFAULT '',
    department  TEXT    NOT NULL DEFAULT '',
    start_at    INTEGER NOT NULL,            -- unix milliseconds
    end_at      INTEGER,                     -- NULL while open
    end_reason  TEXT,                        -- logout, stale, reconciled; NULL while open
    last_seen   INTEGER NOT NULL,
    shift       TEXT    NOT NULL,            -- JSON of duty::shift::Shift
    UNIQUE (ident_id, start_at)
);
CREATE UNIQUE INDEX shifts_open ON shifts (ident_id) WHERE end_at IS NULL;
CREATE INDEX shifts_end ON shifts (end_at);
CREATE INDEX shifts_start ON shifts (start_at);
