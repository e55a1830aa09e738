-- Every accepted push event, with the exact bytes received: the relay sends
-- these bytes unchanged. `id` is the order of acceptance.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,            -- unix milliseconds
    event_type  TEXT    NOT NULL,            -- upper-cased `type`
    body        BLOB    NOT NULL,            -- raw request body
    source      TEXT,                        -- peer address, for the operator
    echo        INTEGER NOT NULL DEFAULT 0   -- 1: an echo of a body we relayed; not delivered again
);
CREATE INDEX events_received_at ON events (received_at);

-- One row per destination per event, written in the same transaction as the
-- event. destination: 'discord' or 'relay:<url>'.
-- state: pending (to send; held while forwarding is off), delivered, dead
-- (permanent failure), expired (too old to send), skipped (forwarding was
-- off when the event arrived). dead and expired rows are the dead letters.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    destination     TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- unix milliseconds
    replayed        INTEGER NOT NULL DEFAULT 0,   -- 1: re-queued by an admin; not expired by age
    last_error      TEXT,
    last_response   TEXT,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX outbox_queue ON outbox (destination, state, id);
CREATE INDEX outbox_event ON outbox (event_id);

-- Settings changed at run time by slash commands; they win over the
-- environment once set.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT    NOT NULL,
    changed_by TEXT,
    changed_at INTEGER NOT NULL
);

-- The CAD's units as last seen in login/update/status events, so messages
-- can name a unit instead of showing a bare id.
CREATE TABLE units (
    ident_id   INTEGER PRIMARY KEY,
    unit       TEXT    NOT NULL,             -- JSON snapshot of the unit
    updated_at INTEGER NOT NULL
);

-- What the Discord worker shows: one card per embed. A keyed card (a 911
-- call '911:<callId>', a dispatch call 'dispatch:<callId>') is one message
-- that later events edit; one-off cards have no key. Cards are posted in
-- id order, up to 10 to a message under a burst.
CREATE TABLE discord_cards (
    id              INTEGER PRIMARY KEY,
    card_key        TEXT UNIQUE,
    channel_id      INTEGER NOT NULL,
    embed           TEXT    NOT NULL,             -- JSON embed as it should look now
    mentions        TEXT    NOT NULL DEFAULT '[]', -- JSON role ids pinged when posted
    state           TEXT,                          -- JSON state later events build on
    message_id      INTEGER,                       -- NULL until Discord has it
    position        INTEGER NOT NULL DEFAULT 0,    -- index of the embed in its message
    dirty           INTEGER NOT NULL DEFAULT 1,    -- 1: Discord does not show the latest embed yet
    version         INTEGER NOT NULL DEFAULT 1,    -- bumped on every change
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,    -- unix milliseconds
    last_error      TEXT,
    failed          INTEGER NOT NULL DEFAULT 0,    -- 1: refused by Discord for good
    updated_at      INTEGER NOT NULL
);
CREATE INDEX discord_cards_dirty ON discord_cards (id) WHERE dirty = 1;
CREATE INDEX discord_cards_message ON discord_cards (message_id);
