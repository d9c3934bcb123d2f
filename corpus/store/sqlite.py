"""The SQLite engine of the article store (the default: one file under the data home).

One connection shared by threads behind a lock: SQLite serialises writers anyway, and a
single connection keeps transactions simple. WAL lets other processes read meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import TracebackType

from akhbar.corpus.models import Article
from akhbar.corpus.store.base import (
    ARTICLE_COLUMNS,
    FEED_COLUMNS,
    FEED_NAMES,
    FEED_STATE_NAMES,
    JOB_COLUMNS,
    PAGE,
    ChangesPrunedError,
    FeedRecord,
    JobRecord,
    LogEntry,
    StoredState,
    corpus_checksum,
    merge_outlets,
    now_iso,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    text          TEXT NOT NULL,
    language      TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('article', 'headline')),
    outlet        TEXT,
    url           TEXT,
    published     TEXT,
    author        TEXT,
    source        TEXT,
    duplicate_of  TEXT REFERENCES articles(id) ON DELETE SET NULL,
    content_hash  TEXT NOT NULL,
    minhash       BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_content_hash ON articles(content_hash);
CREATE INDEX IF NOT EXISTS articles_duplicate_of ON articles(duplicate_of);
CREATE TABLE IF NOT EXISTS ingest_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    item_key      TEXT,
    outcome       TEXT NOT NULL
                  CHECK (outcome IN ('stored', 'duplicate', 'rejected', 'unchanged')),
    reason        TEXT,
    article_id    TEXT,
    duplicate_of  TEXT,
    ts            TEXT NOT NULL
);
-- Every write to an article (insert, update, delete) in commit order, whichever code path
-- made it: an index that follows the store reads what changed after its watermark.
CREATE TABLE IF NOT EXISTS changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id    TEXT NOT NULL
);
-- The highest sequence pruned from it (one row): a reader behind it missed writes.
CREATE TABLE IF NOT EXISTS changes_pruned (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    upto          INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS articles_inserted AFTER INSERT ON articles
    BEGIN INSERT INTO changes (article_id) VALUES (new.id); END;
CREATE TRIGGER IF NOT EXISTS articles_updated AFTER UPDATE ON articles
    BEGIN INSERT INTO changes (article_id) VALUES (new.id); END;
CREATE TRIGGER IF NOT EXISTS articles_deleted AFTER DELETE ON articles
    BEGIN INSERT INTO changes (article_id) VALUES (old.id); END;
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    stage         TEXT,
    done          INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL DEFAULT 0,
    result        TEXT,
    error         TEXT,
    created       REAL NOT NULL,
    started       REAL,
    finished      REAL
);
CREATE TABLE IF NOT EXISTS feeds (
    url              TEXT PRIMARY KEY,
    outlet           TEXT,
    interval_s       REAL NOT NULL,
    created          REAL NOT NULL,
    next_poll        REAL NOT NULL,
    etag             TEXT,
    last_modified    TEXT,
    ttl_s            REAL,
    last_poll        REAL,
    last_outcome     TEXT,
    last_success     REAL,
    last_error       TEXT,
    last_error_at    REAL,
    failures         INTEGER NOT NULL DEFAULT 0,
    last_new_items   INTEGER NOT NULL DEFAULT 0,
    total_new_items  INTEGER NOT NULL DEFAULT 0
);
"""


def _row_to_article(row: sqlite3.Row) -> Article:
    published = row["published"]
    return Article(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        language=row["language"],
        kind=row["kind"],
        outlet=row["outlet"],
        url=row["url"],
        published=date.fromisoformat(published) if published else None,
        author=row["author"],
        source=row["source"],
        duplicate_of=row["duplicate_of"],
    )


# A page of articles after an id, read along the id index. The unary ``+`` keeps SQLite
# (which keeps no statistics here) from reading the page through the duplicate_of index
# instead: every canonical article, then a sort, on every page, quadratic in the store
# (a million articles: about 25 minutes to iterate).
_PAGE_ALL = f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id > ? ORDER BY id LIMIT ?"
_PAGE_CANONICAL = (
    f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id > ? AND +duplicate_of IS NULL"
    " ORDER BY id LIMIT ?"
)


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------

    def get_article(self, article_id: str) -> Article | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return _row_to_article(row) if row else None

    def iter_articles(self, include_duplicates: bool = False) -> Iterator[Article]:
        """Articles ordered by id, read in pages so the lock is never held across a yield."""
        sql = _PAGE_ALL if include_duplicates else _PAGE_CANONICAL
        last = ""
        while True:
            with self._lock:
                rows = self._conn.execute(sql, (last, PAGE)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _row_to_article(row)
            last = rows[-1]["id"]

    def count_articles(self, include_duplicates: bool = False) -> int:
        where = "" if include_duplicates else "WHERE duplicate_of IS NULL"
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM articles {where}").fetchone()[0])

    def outlet_counts(self) -> list[tuple[str, int]]:
        """(outlet, canonical articles), most articles first. Spellings that differ only in
        case are one outlet, as the search filter treats them, named by the commonest."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT outlet, COUNT(*) FROM articles"
                " WHERE outlet IS NOT NULL AND duplicate_of IS NULL GROUP BY outlet"
            ).fetchall()
        return merge_outlets(rows)

    def checksum(self) -> str:
        """Fingerprint of the indexable corpus: sha256 over sorted (id, content hash)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, content_hash FROM articles WHERE duplicate_of IS NULL ORDER BY id"
            ).fetchall()
        return corpus_checksum((r[0], r[1]) for r in rows)

    def stored_state(self, article_id: str) -> StoredState | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT content_hash, duplicate_of FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return StoredState(row[0], row[1]) if row else None

    def find_canonical_by_hash(self, content_hash: str, exclude: str | None = None) -> str | None:
        """The first-stored non-duplicate article with this content hash."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM articles WHERE content_hash = ? AND duplicate_of IS NULL"
                " AND id != ? ORDER BY rowid LIMIT 1",
                (content_hash, exclude or ""),
            ).fetchone()
        return row[0] if row else None

    def iter_signatures(self) -> Iterator[tuple[str, bytes]]:
        """(id, minhash blob) of canonical articles that have a signature."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, minhash FROM articles WHERE minhash IS NOT NULL"
                " AND duplicate_of IS NULL ORDER BY rowid"
            ).fetchall()
        for row in rows:
            yield row[0], bytes(row[1])

    def change_seq(self) -> int:
        """The sequence number of the last committed article write (0: none yet). SQLite
        serialises writers, so numbers are handed out in commit order."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM changes), 0),"
                " COALESCE((SELECT upto FROM changes_pruned), 0))"
            ).fetchone()
        return int(row[0])

    def changes_after(self, seq: int, limit: int = 10_000) -> tuple[list[str], int]:
        """Ids of the articles written after ``seq`` (each once, oldest first, at most
        ``limit`` writes read) and the sequence number the reading stopped at.
        ChangesPrunedError if rows after ``seq`` were pruned (see ``prune_changes``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, article_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            # Read after the rows: a prune that ran before them is seen here.
            pruned = self._conn.execute("SELECT upto FROM changes_pruned").fetchone()
        if pruned is not None and seq < pruned[0]:
            raise ChangesPrunedError(seq, int(pruned[0]))
        if not rows:
            return [], seq
        return list(dict.fromkeys(r[1] for r in rows)), int(rows[-1][0])

    def prune_changes(self, upto: int) -> int:
        """Delete the change rows up to ``upto`` (at most the last one), which every
        follower has read; returns how many went. A reader still behind is told by
        ``changes_after`` instead of missing them."""
        with self.transaction() as conn:
            last = conn.execute("SELECT MAX(seq) FROM changes").fetchone()[0]
            upto = min(upto, int(last or 0))
            if upto <= 0:
                return 0
            gone = conn.execute("DELETE FROM changes WHERE seq <= ?", (upto,)).rowcount
            conn.execute(
                "INSERT INTO changes_pruned (id, upto) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET upto = MAX(upto, excluded.upto)",
                (upto,),
            )
        return gone

    def ingest_log(self, limit: int | None = None) -> list[LogEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, item_key, outcome, reason, article_id, duplicate_of, ts"
                " FROM ingest_log ORDER BY seq LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [LogEntry(*row) for row in rows]

    # -- writes ----------------------------------------------------------------------------

    def put_article(
        self,
        conn: sqlite3.Connection,
        article: Article,
        *,
        content_hash: str,
        signature: bytes | None,
    ) -> None:
        """Insert or replace ``article`` inside a transaction from ``transaction()``."""
        now = now_iso()
        conn.execute(
            """
            INSERT INTO articles (id, title, text, language, kind, outlet, url, published,
                                  author, source, duplicate_of, content_hash, minhash,
                                  created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                title=excluded.title, text=excluded.text, language=excluded.language,
                kind=excluded.kind, outlet=excluded.outlet, url=excluded.url,
                published=excluded.published, author=excluded.author, source=excluded.source,
                duplicate_of=excluded.duplicate_of, content_hash=excluded.content_hash,
                minhash=excluded.minhash, updated_at=excluded.updated_at
            """,
            (
                article.id,
                article.title,
                article.text,
                article.language,
                article.kind,
                article.outlet,
                article.url,
                article.published.isoformat() if article.published else None,
                article.author,
                article.source,
                article.duplicate_of,
                content_hash,
                signature,
                now,
                now,
            ),
        )

    def log(
        self,
        conn: sqlite3.Connection,
        *,
        source: str,
        outcome: str,
        item_key: str | None = None,
        reason: str | None = None,
        article_id: str | None = None,
        duplicate_of: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO ingest_log (source, item_key, outcome, reason, article_id,"
            " duplicate_of, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, item_key, outcome, reason, article_id, duplicate_of, now_iso()),
        )

    def delete_article(self, article_id: str) -> bool:
        """Delete an article; its duplicates are re-pointed to the oldest of them instead."""
        with self.transaction() as conn:
            dups = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM articles WHERE duplicate_of = ? ORDER BY rowid",
                    (article_id,),
                )
            ]
            if dups:
                heir, rest = dups[0], dups[1:]
                conn.execute("UPDATE articles SET duplicate_of = NULL WHERE id = ?", (heir,))
                conn.executemany(
                    "UPDATE articles SET duplicate_of = ? WHERE id = ?",
                    [(heir, d) for d in rest],
                )
            cur = conn.execute("DELETE FROM articles WHERE id = ?", (article_id,))
            return cur.rowcount > 0

    # -- jobs ------------------------------------------------------------------------------

    def save_job(self, job: JobRecord) -> None:
        """Insert or update one job (its whole row: jobs are small)."""
        values = (
            job.id,
            job.kind,
            job.status,
            job.stage,
            job.done,
            job.total,
            json.dumps(job.result) if job.result is not None else None,
            job.error,
            job.created,
            job.started,
            job.finished,
        )
        with self._lock:
            self._conn.execute(
                f"INSERT OR REPLACE INTO jobs ({JOB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            return None
        values = dict(row)
        values["result"] = json.loads(values["result"]) if values["result"] else None
        return JobRecord(**values)

    def interrupt_jobs(self, statuses: tuple[str, ...], error: str, finished: float) -> int:
        """Mark jobs left in ``statuses`` by a process that died as ``interrupted``."""
        marks = ",".join("?" * len(statuses))
        with self._lock:
            cur = self._conn.execute(
                f"UPDATE jobs SET status = 'interrupted', error = ?, finished = ?"
                f" WHERE status IN ({marks})",
                (error, finished, *statuses),
            )
        return cur.rowcount

    def prune_jobs(self, keep: int) -> None:
        """Forget all but the ``keep`` most recent jobs."""
        with self._lock:
            self._conn.execute(
                "DELETE FROM jobs WHERE id NOT IN"
                " (SELECT id FROM jobs ORDER BY created DESC, rowid DESC LIMIT ?)",
                (keep,),
            )

    # -- feeds -----------------------------------------------------------------------------

    def add_feed(self, feed: FeedRecord) -> bool:
        """Subscribe; False (and nothing changed) if ``feed.url`` is already subscribed."""
        values = tuple(getattr(feed, c) for c in FEED_NAMES)
        marks = ",".join("?" * len(values))
        with self._lock:
            cur = self._conn.execute(
                f"INSERT OR IGNORE INTO feeds ({FEED_COLUMNS}) VALUES ({marks})", values
            )
        return cur.rowcount > 0

    def get_feed(self, url: str) -> FeedRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?", (url,)
            ).fetchone()
        return FeedRecord(**dict(row)) if row else None

    def list_feeds(self) -> list[FeedRecord]:
        """Every subscription, the next due first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {FEED_COLUMNS} FROM feeds ORDER BY next_poll, url"
            ).fetchall()
        return [FeedRecord(**dict(row)) for row in rows]

    def remove_feed(self, url: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM feeds WHERE url = ?", (url,))
        return cur.rowcount > 0

    def claim_feed(self, url: str, due: float, until: float) -> bool:
        """Take a due feed for one poll by moving its next poll to ``until``; False if
        another poller took it first (its next poll is no longer ``due``) or it is gone."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE feeds SET next_poll = ? WHERE url = ? AND next_poll = ?",
                (until, url, due),
            )
        return cur.rowcount > 0

    def save_feed_state(self, feed: FeedRecord) -> bool:
        """Write a poll's outcome; an update only, so a feed removed meanwhile stays gone."""
        names = FEED_STATE_NAMES
        with self._lock:
            cur = self._conn.execute(
                f"UPDATE feeds SET {', '.join(f'{n} = ?' for n in names)} WHERE url = ?",
                (*(getattr(feed, n) for n in names), feed.url),
            )
        return cur.rowcount > 0
