"""Versioned schema migrations: plain SQL files applied in order, recorded in a table.

Why not Alembic: the schema is a handful of tables written by hand (no ORM models to diff
against, which is what Alembic's autogenerate is for), and the SQL files are what a DBA
reads and runs. A migration is ``migrations/NNNN_name.sql``; ``migrate`` applies the ones
a schema lacks in one transaction (PostgreSQL's DDL is transactional: all or nothing),
each with its row in ``akhbar_schema``, under an advisory lock so two processes starting at
once do not both apply one. Start-up calls
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
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    folder = resources.files("akhbar.index.postgres").joinpath("migrations")
    out = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), entry.name, entry.read_text("utf-8")))
    out.sort(key=lambda m: m.version)
    if [m.version for m in out] != list(range(1, len(out) + 1)):
        raise SchemaError("migration files must be numbered 0001, 0002, ... without gaps")
    return out


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"not a valid schema name: {namespace!r}")
    return namespace


def use_namespace(conn: psycopg.Connection, namespace: str) -> None:
    """Resolve unqualified names in ``namespace``, then ``public`` (where extensions are)."""
    conn.execute(
        sql.SQL("SET search_path TO {}, public").format(sql.Identifier(check_namespace(namespace)))
    )


def applied(conn: psycopg.Connection, namespace: str) -> int:
    """The schema version of ``namespace`` (0: none)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.akhbar_schema', %s::text)) IS NOT NULL", [namespace]
    ).fetchone()
    if not row or not row[0]:
        return 0
    query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.akhbar_schema").format(
        sql.Identifier(namespace)
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
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.akhbar_schema (version integer PRIMARY KEY, "
                "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
            ).format(ns)
        )
        current = applied(conn, namespace)
        for m in migrations():
            if m.version <= current:
                continue
            use_namespace(conn, namespace)
            conn.execute(m.sql.encode())
            conn.execute(
                sql.SQL("INSERT INTO {}.akhbar_schema (version, name) VALUES (%s, %s)").format(ns),
                [m.version, m.name],
            )
            done.append(m.name)
    return done


def check(conn: psycopg.Connection, namespace: str) -> None:
    """Refuse a schema that is not exactly this release's."""
    want = len(migrations())
    have = applied(conn, namespace)
    if have < want:
        raise SchemaError(
            f"the database schema {namespace!r} is at version {have}, this release needs "
            f"{want}: run `akhbar db migrate`"
        )
    if have > want:
        raise SchemaError(
            f"the database schema {namespace!r} is at version {have}, newer than this "
            f"release ({want}): upgrade akhbar"
        )
