-- The live board (issue 11, item 2).

-- The messages the board is shown in, in order, and the body each was last
-- sent with, so a restart edits the same messages, and only if the board
-- changed. A message Discord says is deleted is posted again and its new id
-- replaces the old one here.
CREATE TABLE board_messages (
    position   INTEGER PRIMARY KEY,       -- 0: the first (top) message
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    body       TEXT    NOT NULL,          -- JSON body as last sent
    updated_at INTEGER NOT NULL           -- unix milliseconds
);

-- Active panics: from EVENT_UNIT_PANIC isPanic=true until isPanic=false or
-- the unit's EVENT_UNIT_LOGOUT.
CREATE TABLE board_panics (
    ident_id INTEGER PRIMARY KEY,
    since    INTEGER NOT NULL             -- unix ms the panic event was received
);

-- When the board first listed each call (its age on the board).
CREATE TABLE board_calls (
    card_key   TEXT PRIMARY KEY,          -- '911:<id>' / 'dispatch:<id>', as discord_cards
    first_seen INTEGER NOT NULL
);

-- How far the board has read the events for panics and logouts.
CREATE TABLE board_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL
);

-- A database from before the board: panics already shown on the roster
-- carry over, and the board reads only events from now on.
INSERT INTO board_cursor (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
INSERT INTO board_panics (ident_id, since)
    SELECT ident_id, updated_at FROM units WHERE json_extract(unit, '$.isPanic') = 1;
