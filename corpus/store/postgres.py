"""The PostgreSQL engine of the article store: every API process on every machine shares
one store (the postgres extra).

The tables are a migration (``migrations/0001_store.sql``) that `akhbar db migrate`
applies and the composition checks at start-up with the index's; this engine only
refuses to start on a schema without them. Connections come from a pool, each with the
store's schema first on its search path. Write transactions take the change clock's row
lock first, so they run one at a time, as on SQLite, and change numbers follow commit
order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

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
)
from akhbar.corpus.store.errors import StoreUnavailableError

_NAMESPACE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# How long a call waits for a pooled connection: enough for a busy pool to hand one back,
# short enough that with the database down a request is answered (503) well inside its
# timeout rather than after the pool's default 30 s.
WAIT_S = 5.0


class StoreSchemaError(RuntimeError):
    """The database has no article store in this schema: run `akhbar db migrate`."""


def _article(row: dict) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        language=row["language"],
        kind=row["kind"],
        outlet=row["outlet"],
        url=row["url"],
        published=row["published"],
        author=row["author"],
        source=row["source"],
        duplicate_of=row["duplicate_of"],
    )


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


class PostgresStore:
    def __init__(
        self, url: str, *, namespace: str, pool_size: int = 4, wait_s: float = WAIT_S
    ) -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"not a valid schema name: {namespace!r}")
        self.namespace = namespace
        search_path = sql.SQL("SET search_path TO {}, public").format(sql.Identifier(namespace))

        def configure(conn: psycopg.Connection) -> None:
            conn.execute(search_path)
            conn.commit()

        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            configure=configure,
            # Checked as handed out: after a database restart, calls get live connections
            # instead of failing on the ones the restart cut.
            check=ConnectionPool.check_connection,
            timeout=wait_s,
            kwargs={"connect_timeout": 10},
            open=False,
        )
        self._pool.open(wait=True, timeout=30)
        try:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT to_regclass(format('%%I.articles', %s::text)) IS NOT NULL"
                    " AND to_regclass(format('%%I.change_clock', %s::text)) IS NOT NULL",
                    [namespace, namespace],
                ).fetchone()
            if not row or not row[0]:
                raise StoreSchemaError(
                    f"no article store in the database schema {namespace!r}: run "
                    "`akhbar db migrate`"
                )
        except BaseException:
            self._pool.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (committed on success, rolled back on error), with a
        database that cannot be reached reported as ``StoreUnavailableError``."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"the store's database gave no connection in time: {exc}"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"the store's database cannot be reached: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """All writes inside commit together or not at all; one write transaction at a
        time (the clock's row lock, held to commit), as SQLite's BEGIN IMMEDIATE."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT seq FROM change_clock FOR UPDATE")
            yield conn

    def _one(self, query: str, params: tuple | list = ()) -> tuple | None:
        with self._connection() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: str, params: tuple | list = ()) -> list[tuple]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    def _dicts(self, query: str, params: tuple | list = ()) -> list[dict]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def _write(self, query: str, params: tuple | list = ()) -> int:
        """One statement committed on its own; the rows it touched."""
        with self._connection() as conn:
            return conn.execute(query, params).rowcount

    # -- reads -----------------------------------------------------------------------------

    def get_article(self, article_id: str) -> Article | None:
        rows = self._dicts(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = %s", (article_id,))
        return _article(rows[0]) if rows else None

    def iter_articles(self, include_duplicates: bool = False) -> Iterator[Article]:
        """Articles ordered by id, read in pages so no connection is held across a yield."""
        where = "" if include_duplicates else "AND duplicate_of IS NULL"
        last = ""
        while True:
            rows = self._dicts(
                f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id > %s {where}"
                " ORDER BY id LIMIT %s",
                (last, PAGE),
            )
            if not rows:
                return
            for row in rows:
                yield _article(row)
            last = rows[-1]["id"]

    def count_articles(self, include_duplicates: bool = False) -> int:
        where = "" if include_duplicates else "WHERE duplicate_of IS NULL"
        row = self._one(f"SELECT count(*) FROM articles {where}")
        return int(row[0]) if row else 0

    def outlet_counts(self) -> list[tuple[str, int]]:
        """(outlet, canonical articles), most articles first. Spellings that differ only in
        case are one outlet, as the search filter treats them, named by the commonest."""
        rows = self._all(
            "SELECT outlet, count(*) FROM articles"
            " WHERE outlet IS NOT NULL AND duplicate_of IS NULL GROUP BY outlet"
        )
        return merge_outlets((r[0], r[1]) for r in rows)

    def checksum(self) -> str:
        """Fingerprint of the indexable corpus: sha256 over sorted (id, content hash)."""
        rows = self._all(
            "SELECT id, content_hash FROM articles WHERE duplicate_of IS NULL ORDER BY id"
        )
        return corpus_checksum((r[0], r[1]) for r in rows)

    def stored_state(self, article_id: str) -> StoredState | None:
        row = self._one(
            "SELECT content_hash, duplicate_of FROM articles WHERE id = %s", (article_id,)
        )
        return StoredState(row[0], row[1]) if row else None

    def find_canonical_by_hash(self, content_hash: str, exclude: str | None = None) -> str | None:
        """The first-stored non-duplicate article with this content hash."""
        row = self._one(
            "SELECT id FROM articles WHERE content_hash = %s AND duplicate_of IS NULL"
            " AND id <> %s ORDER BY pos LIMIT 1",
            (content_hash, exclude or ""),
        )
        return row[0] if row else None

    def iter_signatures(self) -> Iterator[tuple[str, bytes]]:
        """(id, minhash blob) of canonical articles that have a signature."""
        rows = self._all(
            "SELECT id, minhash FROM articles WHERE minhash IS NOT NULL"
            " AND duplicate_of IS NULL ORDER BY pos"
        )
        for row in rows:
            yield row[0], bytes(row[1])

    def change_seq(self) -> int:
        """The sequence number of the last committed article write (0: none yet)."""
        row = self._one("SELECT seq FROM change_clock")
        return int(row[0]) if row else 0

    def changes_after(self, seq: int, limit: int = 10_000) -> tuple[list[str], int]:
        """Ids of the articles written after ``seq`` (each once, oldest transaction first,
        about ``limit`` writes read: whole transactions, which share one number) and the
        sequence number the reading stopped at). ChangesPrunedError if rows after ``seq``
        were pruned (see ``prune_changes``)."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT seq, article_id FROM changes WHERE seq > %(after)s AND seq <= coalesce("
                " (SELECT seq FROM changes WHERE seq > %(after)s ORDER BY seq"
                "  OFFSET %(skip)s LIMIT 1), 9223372036854775807)"
                " ORDER BY seq",
                {"after": seq, "skip": max(limit - 1, 0)},
            ).fetchall()
            # Read after the rows (a statement of its own sees every commit before it): a
            # prune that ran before them is seen here.
            pruned = conn.execute("SELECT upto FROM changes_pruned").fetchone()
        if pruned is not None and seq < pruned[0]:
            raise ChangesPrunedError(seq, int(pruned[0]))
        if not rows:
            return [], seq
        return list(dict.fromkeys(r[1] for r in rows)), int(rows[-1][0])

    def prune_changes(self, upto: int) -> int:
        """Delete the change rows up to ``upto`` (at most the last committed number), which
        every follower has read; returns how many went. A reader still behind is told by
        ``changes_after`` instead of missing them."""
        with self.transaction() as conn:  # the clock's lock: no write numbered meanwhile
            row = conn.execute("SELECT seq FROM change_clock").fetchone()
            upto = min(upto, int(row[0]) if row else 0)
            if upto <= 0:
                return 0
            gone = conn.execute("DELETE FROM changes WHERE seq <= %s", (upto,)).rowcount
            conn.execute(
                "INSERT INTO changes_pruned (id, upto) VALUES (true, %s) ON CONFLICT (id)"
                " DO UPDATE SET upto = greatest(changes_pruned.upto, excluded.upto)",
                (upto,),
            )
        return gone

    def ingest_log(self, limit: int | None = None) -> list[LogEntry]:
        rows = self._all(
            "SELECT source, item_key, outcome, reason, article_id, duplicate_of, ts"
            " FROM ingest_log ORDER BY seq LIMIT %s",
            (limit,),
        )
        return [LogEntry(*row[:6], ts=_iso(row[6])) for row in rows]

    # -- writes ----------------------------------------------------------------------------

    def put_article(
        self,
        conn: psycopg.Connection,
        article: Article,
        *,
        content_hash: str,
        signature: bytes | None,
    ) -> None:
        """Insert or replace ``article`` inside a transaction from ``transaction()``."""
        conn.execute(
            """
            INSERT INTO articles (id, title, text, language, kind, outlet, url, published,
                                  author, source, duplicate_of, content_hash, minhash,
                                  created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    date_trunc('second', now()), date_trunc('second', now()))
            ON CONFLICT (id) DO UPDATE SET
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
                article.published,
                article.author,
                article.source,
                article.duplicate_of,
                content_hash,
                signature,
            ),
        )

    def log(
        self,
        conn: psycopg.Connection,
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
            " duplicate_of, ts) VALUES (%s, %s, %s, %s, %s, %s, date_trunc('second', now()))",
            (source, item_key, outcome, reason, article_id, duplicate_of),
        )

    def delete_article(self, article_id: str) -> bool:
        """Delete an article; its duplicates are re-pointed to the oldest of them instead."""
        with self.transaction() as conn:
            dups = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM articles WHERE duplicate_of = %s ORDER BY pos", (article_id,)
                )
            ]
            if dups:
                heir, rest = dups[0], dups[1:]
                conn.execute("UPDATE articles SET duplicate_of = NULL WHERE id = %s", (heir,))
                if rest:
                    conn.execute(
                        "UPDATE articles SET duplicate_of = %s WHERE id = ANY(%s)", (heir, rest)
                    )
            return conn.execute("DELETE FROM articles WHERE id = %s", (article_id,)).rowcount > 0

    # -- jobs ------------------------------------------------------------------------------

    def save_job(self, job: JobRecord) -> None:
        """Insert or update one job (its whole row: jobs are small)."""
        self._write(
            f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (id) DO UPDATE SET kind=excluded.kind, status=excluded.status,"
            " stage=excluded.stage, done=excluded.done, total=excluded.total,"
            " result=excluded.result, error=excluded.error, created=excluded.created,"
            " started=excluded.started, finished=excluded.finished, pos=excluded.pos",
            (
                job.id,
                job.kind,
                job.status,
                job.stage,
                job.done,
                job.total,
                Jsonb(job.result) if job.result is not None else None,
                job.error,
                job.created,
                job.started,
                job.finished,
            ),
        )

    def get_job(self, job_id: str) -> JobRecord | None:
        rows = self._dicts(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        return JobRecord(**rows[0]) if rows else None

    def interrupt_jobs(self, statuses: tuple[str, ...], error: str, finished: float) -> int:
        """Mark jobs left in ``statuses`` by a process that died as ``interrupted``."""
        return self._write(
            "UPDATE jobs SET status = 'interrupted', error = %s, finished = %s"
            " WHERE status = ANY(%s)",
            (error, finished, list(statuses)),
        )

    def prune_jobs(self, keep: int) -> None:
        """Forget all but the ``keep`` most recent jobs."""
        self._write(
            "DELETE FROM jobs WHERE id NOT IN"
            " (SELECT id FROM jobs ORDER BY created DESC, pos DESC LIMIT %s)",
            (keep,),
        )

    # -- feeds -----------------------------------------------------------------------------

    def add_feed(self, feed: FeedRecord) -> bool:
        """Subscribe; False (and nothing changed) if ``feed.url`` is already subscribed."""
        values = tuple(getattr(feed, c) for c in FEED_NAMES)
        marks = ",".join(["%s"] * len(values))
        return (
            self._write(
                f"INSERT INTO feeds ({FEED_COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                values,
            )
            > 0
        )

    def get_feed(self, url: str) -> FeedRecord | None:
        rows = self._dicts(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = %s", (url,))
        return FeedRecord(**rows[0]) if rows else None

    def list_feeds(self) -> list[FeedRecord]:
        """Every subscription, the next due first."""
        rows = self._dicts(f'SELECT {FEED_COLUMNS} FROM feeds ORDER BY next_poll, url COLLATE "C"')
        return [FeedRecord(**row) for row in rows]

    def remove_feed(self, url: str) -> bool:
        return self._write("DELETE FROM feeds WHERE url = %s", (url,)) > 0

    def claim_feed(self, url: str, due: float, until: float) -> bool:
        """Take a due feed for one poll by moving its next poll to ``until``; False if
        another poller took it first (its next poll is no longer ``due``) or it is gone.
        A second process's UPDATE waits on the row lock, then re-reads the row: only one
        of two concurrent claims matches."""
        return (
            self._write(
                "UPDATE feeds SET next_poll = %s WHERE url = %s AND next_poll = %s",
                (until, url, due),
            )
            > 0
        )

    def save_feed_state(self, feed: FeedRecord) -> bool:
        """Write a poll's outcome; an update only, so a feed removed meanwhile stays gone."""
        names = FEED_STATE_NAMES
        assignments = ", ".join(f"{n} = %s" for n in names)
        return (
            self._write(
                f"UPDATE feeds SET {assignments} WHERE url = %s",
                (*(getattr(feed, n) for n in names), feed.url),
            )
            > 0
        )
