-- The index's fixed tables. Each generation's own tables (chunks_g<N>, postings_g<N>)
-- are created by a build (index/postgres/generation.py): their shape is the index format,
-- checked when a generation is opened, not a migration.
CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;

-- The generation being served; one row.
CREATE TABLE index_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation integer
);
INSERT INTO index_state DEFAULT VALUES;

CREATE SEQUENCE index_generation_seq;

CREATE TABLE index_generations (
    generation integer PRIMARY KEY,
    created timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
    -- The last committed write (0: the build itself).
    seq bigint NOT NULL DEFAULT 0,
    -- Versions older than this write are no longer readable (their rows were collected).
    kept_from bigint NOT NULL DEFAULT 0,
    -- Every language its passages have had: a question is analysed in each.
    languages text[] NOT NULL DEFAULT '{}',
    manifest jsonb NOT NULL
);

-- BM25's collection statistics after each write: a reader of version (generation, seq)
-- scores with the figures of that version.
CREATE TABLE index_writes (
    generation integer NOT NULL REFERENCES index_generations ON DELETE CASCADE,
    seq bigint NOT NULL,
    passages bigint NOT NULL,
    tokens bigint NOT NULL,
    PRIMARY KEY (generation, seq)
);
