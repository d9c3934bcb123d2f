"""``akhbar db``: the embedded PostgreSQL (start, stop, status) and schema migrations, for
the postgres backend (AKHBAR_BACKEND=postgres; the postgres extra)."""

from __future__ import annotations

import re

import typer

from akhbar.service.cli.common import console, err, fail, load_settings

db_app = typer.Typer(
    help="The PostgreSQL database of the postgres backend (the postgres extra).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _embedded():  # -> EmbeddedPostgres
    from akhbar.index.postgres.embedded import EmbeddedPostgres

    return EmbeddedPostgres(load_settings().home / "postgres")


def _migrate(url: str, namespace: str) -> list[str]:
    import psycopg

    from akhbar.index.postgres.schema import migrate

    with psycopg.connect(url, connect_timeout=10) as conn:
        return migrate(conn, namespace)


@db_app.command("start")
def start() -> None:
    """Start the embedded PostgreSQL under $AKHBAR_HOME/postgres (initialised on first
    use; run as root, it runs as the system user akhbar-pg) and bring its schema up to
    date. The last line is AKHBAR_DATABASE_URL=... for other processes and machines."""
    import psycopg

    from akhbar.index.postgres.embedded import EmbeddedPostgresError

    settings = load_settings()
    db = _embedded()
    try:
        made = db.init()
        url = db.start()
        applied = _migrate(url, settings.postgres.namespace)
    except (EmbeddedPostgresError, OSError) as exc:
        fail(str(exc))
    except psycopg.Error as exc:
        fail(f"the database refused: {exc}")
    for folder in made:
        err.print(f"made {folder} traversable (o+x) for the database's user", markup=False)
    status = db.status()
    err.print(f"PostgreSQL running (pid {status.pid}) with data in {status.data_dir}", markup=False)
    if applied:
        err.print(f"schema {settings.postgres.namespace}: applied {', '.join(applied)}")
    console.print(f"AKHBAR_DATABASE_URL={url}", markup=False, soft_wrap=True)


@db_app.command("stop")
def stop() -> None:
    """Stop the embedded PostgreSQL (committed data is kept)."""
    from akhbar.index.postgres.embedded import EmbeddedPostgresError

    try:
        was = _embedded().stop()
    except EmbeddedPostgresError as exc:
        fail(str(exc))
    console.print("stopped" if was else "not running")


@db_app.command("status")
def status() -> None:
    """Whether the embedded PostgreSQL runs, where, and its schema version. Exit 1 if not
    running."""
    db = _embedded()
    s = db.status()
    console.print(f"data: {s.data_dir}", markup=False)
    if s.url:
        console.print(f"url: {_masked(s.url)}", markup=False)
    if not s.running:
        console.print("not running")
        raise typer.Exit(1)
    console.print(f"running: pid {s.pid}, port {s.port}")


@db_app.command("migrate")
def migrate_command() -> None:
    """Apply the schema migrations this release has and the database lacks
    (AKHBAR_DATABASE_URL, else the embedded database)."""
    import psycopg

    from akhbar.index.base import IndexStateError
    from akhbar.pipeline import database_url

    settings = load_settings()
    try:
        url = database_url(settings)
        applied = _migrate(url, settings.postgres.namespace)
    except (IndexStateError, OSError) as exc:
        fail(str(exc))
    except psycopg.Error as exc:
        fail(f"the database refused: {exc}")
    ns = settings.postgres.namespace
    console.print(
        f"schema {ns}: applied {', '.join(applied)}" if applied else f"schema {ns}: up to date"
    )
