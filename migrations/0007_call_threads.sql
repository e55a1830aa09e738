-- A thread per dispatch call (issue 11): started on the call's card once
-- Discord has it, then one line per change to the call, closed (archived and
-- locked) when the call closes. Both tables are written by the render
-- worker in the same transaction as the cards, so a line rendered but not
-- yet posted, or a thread not yet started, survives a restart.

-- One row per call that gets a thread. A call whose card Discord showed
-- before this table existed has no row and gets no thread.
CREATE TABLE call_threads (
    call_id         INTEGER PRIMARY KEY,
    card_key        TEXT    NOT NULL,              -- dispatch:<call_id>: the card the thread starts on
    name            TEXT    NOT NULL,              -- the thread's name (fixed once the card is posted)
    state           TEXT    NOT NULL DEFAULT 'pending', -- pending, open, closed, refused
    thread_id       INTEGER,                       -- Discord's thread (= the card's message id) once open
    close_wanted    INTEGER NOT NULL DEFAULT 0,    -- 1: the call closed; archive and lock after the last line
    attempts        INTEGER NOT NULL DEFAULT 0,    -- failed starts or closes in a row
    next_attempt_at INTEGER NOT NULL DEFAULT 0,    -- unix milliseconds
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX call_threads_active ON call_threads (state) WHERE state IN ('pending', 'open');
CREATE UNIQUE INDEX call_threads_card ON call_threads (card_key);

-- Lines waiting to be posted into a call's thread, in order (id). A line is
-- deleted once Discord has it; a refused thread's lines are deleted with
-- the refusal recorded on its row.
CREATE TABLE call_thread_lines (
    id              INTEGER PRIMARY KEY,
    call_id         INTEGER NOT NULL REFERENCES call_threads (call_id) ON DELETE CASCADE,
    content         TEXT    NOT NULL,              -- the message content, already escaped
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX call_thread_lines_call ON call_thread_lines (call_id, id);

-- Retention: a call's thread (and any line left) goes with its card's
-- record, which the hourly prune deletes once unchanged for RETENTION_DAYS.
CREATE TRIGGER call_threads_follow_cards AFTER DELETE ON discord_cards
WHEN OLD.card_key LIKE 'dispatch:%'
BEGIN
    DELETE FROM call_threads WHERE card_key = OLD.card_key;
END;
