"""The article store: the contract and records (``base``), the SQLite engine (``sqlite``,
the default) and the PostgreSQL engine (``postgres``, the postgres extra; imported from
its module, so this package imports without psycopg). ``Store`` is the SQLite engine."""

from akhbar.corpus.store.base import (
    ArticleStore,
    ChangesPrunedError,
    FeedRecord,
    JobRecord,
    LogEntry,
    StoredState,
)
from akhbar.corpus.store.sqlite import SqliteStore

Store = SqliteStore

__all__ = [
    "ArticleStore",
    "ChangesPrunedError",
    "FeedRecord",
    "JobRecord",
    "LogEntry",
    "SqliteStore",
    "Store",
    "StoredState",
]
