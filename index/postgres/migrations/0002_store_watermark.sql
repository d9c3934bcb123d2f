-- How far each generation has read the article store's change log (the store's change
-- number of the last write it indexed), moved in the same transaction as the index rows
-- it stands for: a crash before the commit leaves both as they were, and the next
-- catch-up redoes the batch. NULL: a generation built from articles read elsewhere (eval,
-- a bench tier), which does not follow the store.
ALTER TABLE index_generations ADD COLUMN store_seq bigint;
