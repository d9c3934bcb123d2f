"""Connection pools to the index's database, and what their failures mean to a caller.

A database that is down or restarting is a state the service reports (503, try again),
not an internal error: ``connection`` turns a lost connection or a pool that cannot get
one into ``IndexUnavailableError``. Pooled connections are checked as they are handed out,
so after a database restart each request gets a live one instead of the first requests
failing on the connections the restart cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from akhbar.index.base import IndexUnavailableError
from akhbar.index.postgres.schema import use_namespace

# How long a request waits for a connection: long enough for a busy pool to hand one
# back, short enough that with the database down a question gets its 503 well inside the
# request timeout instead of hanging until the pool's default 30 s.
WAIT_S = 5.0


def open_pool(url: str, size: int, namespace: str) -> ConnectionPool:
    def configure(conn: psycopg.Connection) -> None:
        use_namespace(conn, namespace)
        conn.commit()

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        configure=configure,
        check=ConnectionPool.check_connection,
        timeout=WAIT_S,
        kwargs={"connect_timeout": 10},
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


@contextmanager
def connection(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A pooled connection (its transaction committed on success, rolled back on error),
    with an unreachable database reported as ``IndexUnavailableError``."""
    try:
        with pool.connection() as conn:
            yield conn
    except PoolTimeout as exc:
        raise IndexUnavailableError(
            f"the index's database gave no connection within {WAIT_S:g} s: {exc}"
        ) from exc
    except psycopg.OperationalError as exc:
        raise IndexUnavailableError(f"the index's database cannot be reached: {exc}") from exc
