-- The Discord sender picks each channel's oldest unsent card, so one
-- channel's backlog never hides another's: index the queue by channel.
DROP INDEX discord_cards_dirty;
CREATE INDEX discord_cards_queue ON discord_cards (channel_id, id) WHERE dirty = 1 AND failed = 0;
