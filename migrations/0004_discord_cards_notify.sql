-- Quiet by default: a card posts with Discord's silent flag
-- (SUPPRESS_NOTIFICATIONS) unless notify = 1 (a new emergency 911 call, a
-- priority-1 dispatch call or its escalation, a panic, an alert). Stored so
-- the bit survives a restart between rendering and posting.
-- Existing rows default to quiet: posted ones are only ever edited (an edit
-- never notifies). A card still queued across the upgrade that pings a role
-- (an emergency, a panic, a priority-1 call with its role set) keeps
-- notifying: a silent message would mute its ping. Other queued cards post
-- silent.
ALTER TABLE discord_cards ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
UPDATE discord_cards SET notify = 1 WHERE message_id IS NULL AND mentions <> '[]';
