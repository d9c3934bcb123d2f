-- The store's change number a generation was built from (``store_seq`` moves on with each
-- catch-up; this stays). Once the generation is served, the store's change rows up to it
-- are pruned: the generation holds them, and a build that could still go live read the
-- store after them (or, if not, finds the gap and rebuilds). NULL: built before this
-- column, or from articles read elsewhere: nothing is pruned for it.
ALTER TABLE index_generations ADD COLUMN built_store_seq bigint;
