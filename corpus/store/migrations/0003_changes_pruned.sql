-- How far the change log was pruned: rows numbered up to ``upto`` are gone. A follower
-- behind it is told so (ChangesPrunedError) and reads the whole corpus again, instead of
-- taking the rows that are left for everything that changed.
CREATE TABLE changes_pruned (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    upto  bigint NOT NULL
);
