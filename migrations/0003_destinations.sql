-- Delivery destinations as data: the Discord worker and each relay target
-- get a row, and outbox rows reference it by id instead of naming it.
-- kind: 'discord' (always id 1, never retired) or 'relay' (url set).
-- retired_at: set when a relay target leaves FORWARD_URLS; its pending rows
-- become dead letters ("target removed") and a later start with the same
-- URL makes a new row. At most one live row per URL.
CREATE TABLE destinations (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    url        TEXT,
    created_at INTEGER NOT NULL,
    retired_at INTEGER                     -- unix milliseconds; NULL while live
);
CREATE UNIQUE INDEX destinations_live ON destinations (kind, COALESCE(url, '')) WHERE retired_at IS NULL;

INSERT INTO destinations (id, kind, url, created_at)
VALUES (1, 'discord', NULL, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- Existing 'relay:<url>' (and any other) names become relay targets.
INSERT INTO destinations (kind, url, created_at)
SELECT 'relay',
       CASE WHEN destination LIKE 'relay:%' THEN substr(destination, 7) ELSE destination END,
       CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
FROM (SELECT DISTINCT destination FROM outbox WHERE destination <> 'discord' ORDER BY destination);

CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    destination_id  INTEGER NOT NULL REFERENCES destinations (id),
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- unix milliseconds
    replayed        INTEGER NOT NULL DEFAULT 0,   -- 1: re-queued by an admin; not expired by age
    last_error      TEXT,
    last_response   TEXT,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);

INSERT INTO outbox_new (id, event_id, destination_id, state, attempts, next_attempt_at, replayed,
                        last_error, last_response, updated_at, delivered_at)
SELECT o.id, o.event_id,
       CASE WHEN o.destination = 'discord' THEN 1 ELSE (
           SELECT d.id FROM destinations d WHERE d.kind = 'relay' AND d.url =
               CASE WHEN o.destination LIKE 'relay:%' THEN substr(o.destination, 7) ELSE o.destination END)
       END,
       o.state, o.attempts, o.next_attempt_at, o.replayed, o.last_error, o.last_response,
       o.updated_at, o.delivered_at
FROM outbox o;

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_queue ON outbox (destination_id, state, id);
CREATE INDEX outbox_event ON outbox (event_id);
