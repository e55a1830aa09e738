-- Quiet by default: a card posts with Discord's silent flag
-- (SUPPRESS_NOTIFICATIONS) unless notify = 1 (a new emergency 911 call, a
-- priority-1 dispatch call or its escalation, a panic, an alert). Stored so
-- the bit survives a restart between rendering and posting.
-- Existing rows default to quiet: posted ones are only ever edited (an edit
-- never notifies), and a card still queued across the upgrade posts silent.
ALTER TABLE discord_cards ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
