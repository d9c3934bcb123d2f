"""Versioned schema migrations: plain SQL files applied in order, recorded in a table.

Why not Alembic: the schema is a handful of tables written by hand (no ORM models to diff
against, which is what Alembic's autogenerate is for), and the SQL files are what a DBA
reads and runs. A migration is ``migrations/NNNN_name.sql`` beside the code that owns its
tables, in one of two tracks numbered on their own: the index's (here, versions in
``akhbar_schema``) and the article store's (``akhbar.corpus.store``, versions in
``akhbar_store_schema``; the corpus floor cannot import this runner, and a track of its
own lets either add a migration without renumbering the other's). ``migrate`` applies what
a schema lacks in one transaction (PostgreSQL's DDL is transactional: all or nothing),
each with its row in its track's table, under an advisory lock so two processes starting
at once do not both apply one. Start-up calls
``check`` and refuses a schema behind the code (or ahead of it: an older release must not
write a newer schema).

Everything lives in one PostgreSQL schema (the *namespace*, ``akhbar`` by default), so
eval and tests can keep scratch indexes beside the served one in the same database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from akhbar.index.base import IndexStateError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NAMESPACE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOCK = 0x616B68626172  # "akhbar": the advisory lock migrations take


class SchemaError(IndexStateError):
    """The database's schema does not match this release: run `akhbar db migrate`."""


@dataclass(frozen=True)
class Track:
    """One sequence of migrations: where its files are, which table records it."""

    table: str
    package: str
    what: str


INDEX = Track("akhbar_schema", "akhbar.index.postgres", "the database schema")
STORE = Track("akhbar_store_schema", "akhbar.corpus.store", "the article store in schema")
TRACKS = (INDEX, STORE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    track: Track = INDEX


def _track(track: Track) -> list[Migration]:
    out = []
    for entry in resources.files(track.package).joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), entry.name, entry.read_text("utf-8"), track))
    out.sort(key=lambda m: m.version)
    if [m.version for m in out] != list(range(1, len(out) + 1)):
        raise SchemaError(
            f"{track.package} migration files must be numbered 0001, 0002, ... without gaps"
        )
    return out


def migrations() -> list[Migration]:
    """Every track's migrations, in the order ``migrate`` applies them."""
    return [m for track in TRACKS for m in _track(track)]


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"not a valid schema name: {namespace!r}")
    return namespace


def use_namespace(conn: psycopg.Connection, namespace: str) -> None:
    """Resolve unqualified names in ``namespace``, then ``public`` (where extensions are)."""
    conn.execute(
        sql.SQL("SET search_path TO {}, public").format(sql.Identifier(check_namespace(namespace)))
    )


def applied(conn: psycopg.Connection, namespace: str, track: Track = INDEX) -> int:
    """The version of ``namespace`` in ``track`` (0: none)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
        [namespace, track.table],
    ).fetchone()
    if not row or not row[0]:
        return 0
    query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.{}").format(
        sql.Identifier(namespace), sql.Identifier(track.table)
    )
    version = conn.execute(query).fetchone()
    return int(version[0]) if version else 0


def migrate(conn: psycopg.Connection, namespace: str) -> list[str]:
    """Apply what ``namespace`` lacks; returns the names of the migrations applied."""
    ns = sql.Identifier(check_namespace(namespace))
    done: list[str] = []
    conn.commit()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ns))
        for track in TRACKS:
            table = sql.Identifier(track.table)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
                ).format(ns, table)
            )
            current = applied(conn, namespace, track)
            for m in _track(track):
                if m.version <= current:
                    continue
                use_namespace(conn, namespace)
                conn.execute(m.sql.encode())
                conn.execute(
                    sql.SQL("INSERT INTO {}.{} (version, name) VALUES (%s, %s)").format(ns, table),
                    [m.version, m.name],
                )
                done.append(m.name)
    return done


def check(conn: psycopg.Connection, namespace: str) -> None:
    """Refuse a schema that is not exactly this release's (every track)."""
    for track in TRACKS:
        want = len(_track(track))
        have = applied(conn, namespace, track)
        if have < want:
            raise SchemaError(
                f"{track.what} {namespace!r} is at version {have}, this release needs "
                f"{want}: run `akhbar db migrate`"
            )
        if have > want:
            raise SchemaError(
                f"{track.what} {namespace!r} is at version {have}, newer than this "
                f"release ({want}): upgrade akhbar"
            )
