-- The article store (corpus/store/postgres.py): the same tables as the SQLite engine's.
-- The store's migrations are a track of their own, recorded in akhbar_store_schema
-- (index/postgres/schema.py applies both tracks).

-- Ids compare byte-wise ("C"), as SQLite compares text: the same order of iteration and
-- the same checksum for the same articles on either engine.
CREATE TABLE articles (
    id            text COLLATE "C" PRIMARY KEY,
    title         text NOT NULL,
    text          text NOT NULL,
    language      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('article', 'headline')),
    outlet        text,
    url           text,
    published     date,
    author        text,
    source        text,
    duplicate_of  text COLLATE "C" REFERENCES articles(id) ON DELETE SET NULL,
    content_hash  text NOT NULL,
    minhash       bytea,
    -- Insertion order (a replace keeps it), which SQLite's rowid gives the other engine.
    pos           bigserial NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX articles_content_hash ON articles (content_hash);
CREATE INDEX articles_duplicate_of ON articles (duplicate_of);
CREATE INDEX articles_pos ON articles (pos);

CREATE TABLE ingest_log (
    seq           bigserial PRIMARY KEY,
    source        text NOT NULL,
    item_key      text,
    outcome       text NOT NULL
                  CHECK (outcome IN ('stored', 'duplicate', 'rejected', 'unchanged')),
    reason        text,
    article_id    text,
    duplicate_of  text,
    ts            timestamptz NOT NULL
);

-- Every write to an article (insert, update, delete) in commit order, whichever code path
-- made it: an index that follows the store reads what changed after its watermark. A
-- sequence would hand out numbers in statement order, and a reader could pass a number
-- whose transaction commits later: the one-row clock is updated under its row lock, held
-- to commit, so numbers are given out in commit order.
CREATE TABLE change_clock (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL DEFAULT 0
);
INSERT INTO change_clock DEFAULT VALUES;

CREATE TABLE changes (
    seq           bigint PRIMARY KEY,
    article_id    text NOT NULL
);

-- search_path FROM CURRENT: the namespace the migration ran in, whatever the writer's.
CREATE FUNCTION article_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE change_clock SET seq = seq + 1 RETURNING seq INTO n;
    INSERT INTO changes (seq, article_id)
    VALUES (n, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END $$;

CREATE TRIGGER articles_changed AFTER INSERT OR UPDATE OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION article_changed();

CREATE TABLE jobs (
    id            text PRIMARY KEY,
    kind          text NOT NULL,
    status        text NOT NULL,
    stage         text,
    done          bigint NOT NULL DEFAULT 0,
    total         bigint NOT NULL DEFAULT 0,
    result        jsonb,
    error         text,
    created       double precision NOT NULL,
    started       double precision,
    finished      double precision,
    -- Last saved last (SQLite's INSERT OR REPLACE gives a new rowid): ties on ``created``.
    pos           bigserial NOT NULL
);

CREATE TABLE feeds (
    url              text PRIMARY KEY,
    outlet           text,
    interval_s       double precision NOT NULL,
    created          double precision NOT NULL,
    next_poll        double precision NOT NULL,
    etag             text,
    last_modified    text,
    ttl_s            double precision,
    last_poll        double precision,
    last_outcome     text,
    last_success     double precision,
    last_error       text,
    last_error_at    double precision,
    failures         integer NOT NULL DEFAULT 0,
    last_new_items   integer NOT NULL DEFAULT 0,
    total_new_items  integer NOT NULL DEFAULT 0
);
