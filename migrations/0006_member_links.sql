-- Which Discord member is which CAD account or unit (issues 11 and 12):
-- set by an admin (`/duty link`) or by the member (`/link`, through the
-- API). A unit whose identities carry `discord:<id>` needs no row here.
CREATE TABLE member_links (
    discord_id INTEGER PRIMARY KEY,
    acc_id     TEXT,                          -- CAD account id (accId)
    unit_num   TEXT,                          -- or a unit number
    source     TEXT    NOT NULL,              -- 'admin' or 'self'
    linked_by  TEXT,                          -- who made the link, for the operator
    linked_at  INTEGER NOT NULL,              -- unix milliseconds
    CHECK (acc_id IS NOT NULL OR unit_num IS NOT NULL)
);
CREATE INDEX member_links_acc ON member_links (acc_id);
CREATE INDEX member_links_unit ON member_links (unit_num);
