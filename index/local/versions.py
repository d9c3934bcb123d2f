"""Versioned index directories with an atomic switch.

Layout under the index root::

    versions/<version>/manifest.json   # written last: a version without it never existed
    CURRENT                            # the served version's name, replaced atomically
    .staging-<version>/                # a build in progress (or a killed one: swept)
    .build.lock                        # one builder at a time (flock)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from akhbar.index.base import BuildInProgressError, IndexIntegrityError, NoIndexError

MANIFEST = "manifest.json"
# The one number a version folder's layout is known by: a version of another format is
# refused (rebuild it), never read through compatibility code.
INDEX_FORMAT = 2


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(path)


class VersionStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = root / "versions"

    def current_name(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        name = self.current_name()
        if name is None:
            raise NoIndexError(
                f"no index in {self.root}: run `akhbar index` (after `akhbar ingest`)"
            )
        path = self.versions / name
        if not (path / MANIFEST).exists():
            raise IndexIntegrityError(f"CURRENT points at {name}, which has no manifest")
        return path

    def list(self) -> list[str]:
        if not self.versions.exists():
            return []
        return sorted(p.name for p in self.versions.iterdir() if (p / MANIFEST).exists())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".build.lock").open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise BuildInProgressError("another index build is running") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def sweep(self) -> None:
        """Remove what killed builds left behind. Call with the lock held."""
        for p in self.root.glob(".staging-*"):
            shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob("CURRENT.tmp*"):
            p.unlink(missing_ok=True)
        if self.versions.exists():
            for p in self.versions.iterdir():
                if not (p / MANIFEST).exists():
                    shutil.rmtree(p, ignore_errors=True)

    def new_staging(self) -> tuple[str, Path]:
        name = time.strftime("v%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)
        path = self.root / f".staging-{name}"
        path.mkdir(parents=True)
        return name, path

    def commit(self, name: str, staging: Path, manifest: dict) -> Path:
        """Make a staged build the current version: manifest last, then two renames."""
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        fsync_tree(staging)
        self.versions.mkdir(parents=True, exist_ok=True)
        final = self.versions / name
        staging.rename(final)
        _fsync_dir(self.versions)
        tmp = self.root / f"CURRENT.tmp{os.getpid()}"
        tmp.write_text(name + "\n")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "CURRENT")
        _fsync_dir(self.root)
        return final

    def prune(self, keep: int) -> list[str]:
        current = self.current_name()
        names = self.list()
        doomed = [n for n in names[:-keep] if n != current] if keep > 0 else []
        for n in doomed:
            shutil.rmtree(self.versions / n, ignore_errors=True)
        return doomed


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexIntegrityError(f"unreadable manifest in {path}: {exc}") from exc


def check_format(manifest: dict, path: Path) -> None:
    """Refuse a version written in another layout than this code's."""
    found = manifest.get("format")
    if found != INDEX_FORMAT:
        raise IndexIntegrityError(
            f"index {path.name} is in format {found}, this version of akhbar reads format "
            f"{INDEX_FORMAT}: run `akhbar index` to rebuild it"
        )
