"""The narrow index protocol that corpus-facing and service code rely on.

Modelled on txtai's ``ann/base.py``: a handful of operations, so that another engine (a
distributed vector store, say) can stand in for the local FAISS + BM25 implementation
without touching ``corpus/`` or ``service/``.

The write side is a *snapshot build*: ``build`` takes the full set of live articles and
produces a new immutable version. Upserts are articles whose text changed (only their
chunks are re-encoded, through the embedding cache); deletes are articles that are no
longer passed in (and, until the next build, ids the service excludes at query time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from corpus.models import Article
from index.build import BuildReport
from index.searcher import Filters, Hit, Mode


class IndexReader(Protocol):
    """One opened, immutable index version."""

    version: str
    manifest: dict[str, Any]

    @property
    def count(self) -> int: ...

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        question_language: str,
        k: int,
        filters: Filters = ...,
        exclude_articles: frozenset[str] = ...,
        mode: Mode = ...,
    ) -> list[Hit]: ...

    def close(self) -> None: ...


class IndexBackend(Protocol):
    """Builds versions and opens the current one."""

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> BuildReport: ...

    def current_version(self) -> str | None: ...

    def open(self, version: str | None = None) -> IndexReader: ...

    def versions(self) -> list[str]: ...

    def stats(self) -> dict[str, Any]: ...
