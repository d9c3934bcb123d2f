"""The article store's contract and the records every engine returns.

Two engines keep the same behaviour behind ``ArticleStore``: SQLite (``sqlite.py``, a
file under the data home, one process writing at a time) and PostgreSQL (``postgres.py``,
shared by every API process on every machine). ``tests/test_store_conformance.py`` runs
one suite on both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from akhbar.corpus.models import Article

# What ``transaction()`` yields and ``put_article``/``log`` take: the engine's connection
# inside its open transaction. Callers only pass it back.
Tx = Any


@dataclass(slots=True, frozen=True)
class StoredState:
    """What ingest needs to know about an id already in the store."""

    content_hash: str
    duplicate_of: str | None


@dataclass(slots=True)
class JobRecord:
    """A background job as stored, so that its outcome outlives the process that ran it."""

    id: str
    kind: str
    status: str
    stage: str | None = None
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None


JOB_COLUMNS = "id, kind, status, stage, done, total, result, error, created, started, finished"


@dataclass(slots=True)
class FeedRecord:
    """A feed subscription and where its poller stands (times are Unix seconds)."""

    url: str
    outlet: str | None
    interval_s: float
    created: float
    next_poll: float
    etag: str | None = None
    last_modified: str | None = None
    ttl_s: float | None = None  # the feed's own <ttl>, a floor under the interval
    last_poll: float | None = None
    last_outcome: str | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0  # consecutive: the exponent of the backoff
    last_new_items: int = 0
    total_new_items: int = 0


FEED_COLUMNS = (
    "url, outlet, interval_s, created, next_poll, etag, last_modified, ttl_s, last_poll,"
    " last_outcome, last_success, last_error, last_error_at, failures, last_new_items,"
    " total_new_items"
)
# What a poll changes (a subscription's url, outlet, interval and creation time it does not).
FEED_STATE = (
    "next_poll, etag, last_modified, ttl_s, last_poll, last_outcome, last_success,"
    " last_error, last_error_at, failures, last_new_items, total_new_items"
)
FEED_NAMES = [c.strip() for c in FEED_COLUMNS.split(",")]
FEED_STATE_NAMES = [c.strip() for c in FEED_STATE.split(",")]

ARTICLE_COLUMNS = (
    "id, title, text, language, kind, outlet, url, published, author, source, duplicate_of"
)
# Articles are read in pages of this many, so no lock or connection is held across a yield.
PAGE = 500


@dataclass(slots=True, frozen=True)
class LogEntry:
    source: str
    item_key: str | None
    outcome: str
    reason: str | None
    article_id: str | None
    duplicate_of: str | None
    ts: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def merge_outlets(rows: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """(outlet, count) rows → one entry per case-insensitive outlet, named by its
    commonest spelling, most articles first."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for name, n in rows:
        groups.setdefault(name.casefold(), []).append((int(n), name))
    merged = [(max(spellings)[1], sum(n for n, _ in spellings)) for spellings in groups.values()]
    return sorted(merged, key=lambda item: (-item[1], item[0].casefold()))


def corpus_checksum(rows: Iterable[tuple[str, str]]) -> str:
    """sha256 over (id, content hash) rows, which the engine yields sorted by id bytes."""
    digest = hashlib.sha256()
    for article_id, content_hash in rows:
        digest.update(f"{article_id}\t{content_hash}\n".encode())
    return digest.hexdigest()


class ChangesPrunedError(LookupError):
    """The change rows after ``seq`` were partly pruned: a reader at ``seq`` cannot learn
    what changed from the log and must read the whole corpus again (an index: rebuild)."""

    def __init__(self, seq: int, pruned_upto: int) -> None:
        super().__init__(
            f"the store's change log was pruned up to {pruned_upto}; a reader at {seq} "
            "missed writes and must read every article again"
        )
        self.seq = seq
        self.pruned_upto = pruned_upto


@runtime_checkable
class ArticleStore(Protocol):
    """Articles, the ingest log, the change log an index follows, jobs and feeds.

    Writes to articles go through ``transaction()``: what ``put_article`` and ``log`` do
    inside one commits together or not at all, and write transactions are serialised, so
    change numbers are handed out in commit order. Every other write commits on its own.
    """

    def close(self) -> None: ...

    def __enter__(self) -> ArticleStore: ...

    def __exit__(self, *exc: object) -> None: ...

    def transaction(self) -> AbstractContextManager[Tx]: ...

    # -- reads
    def get_article(self, article_id: str) -> Article | None: ...

    def iter_articles(self, include_duplicates: bool = False) -> Iterator[Article]:
        """Ordered by id (byte order)."""
        ...

    def count_articles(self, include_duplicates: bool = False) -> int: ...

    def outlet_counts(self) -> list[tuple[str, int]]: ...

    def checksum(self) -> str:
        """Fingerprint of the indexable corpus: the same for the same articles on any
        engine."""
        ...

    def stored_state(self, article_id: str) -> StoredState | None: ...

    def find_canonical_by_hash(
        self, content_hash: str, exclude: str | None = None
    ) -> str | None: ...

    def iter_signatures(self) -> Iterator[tuple[str, bytes]]: ...

    def change_seq(self) -> int: ...

    def changes_after(self, seq: int, limit: int = 10_000) -> tuple[list[str], int]: ...

    def prune_changes(self, upto: int) -> int: ...

    def ingest_log(self, limit: int | None = None) -> list[LogEntry]: ...

    # -- writes
    def put_article(
        self, conn: Tx, article: Article, *, content_hash: str, signature: bytes | None
    ) -> None: ...

    def log(
        self,
        conn: Tx,
        *,
        source: str,
        outcome: str,
        item_key: str | None = None,
        reason: str | None = None,
        article_id: str | None = None,
        duplicate_of: str | None = None,
    ) -> None: ...

    def delete_article(self, article_id: str) -> bool: ...

    # -- jobs
    def save_job(self, job: JobRecord) -> None: ...

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def interrupt_jobs(self, statuses: tuple[str, ...], error: str, finished: float) -> int: ...

    def prune_jobs(self, keep: int) -> None: ...

    # -- feeds
    def add_feed(self, feed: FeedRecord) -> bool: ...

    def get_feed(self, url: str) -> FeedRecord | None: ...

    def list_feeds(self) -> list[FeedRecord]: ...

    def remove_feed(self, url: str) -> bool: ...

    def claim_feed(self, url: str, due: float, until: float) -> bool: ...

    def save_feed_state(self, feed: FeedRecord) -> bool: ...
