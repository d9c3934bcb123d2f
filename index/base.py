"""The index contract: what the answer layer, the service and eval rely on, and nothing else.

Every backend (``index/local/``: FAISS + bm25s version folders; ``index/memory.py``: numpy
brute force) implements ``IndexBackend`` and ``IndexReader`` with the types below. This
module depends only on ``corpus.models``, the standard library and numpy, so a backend
imports from here and never the reverse.

The write side has two forms: ``build`` replaces the whole index with a new version (the
articles passed in are all the live ones), and ``upsert``/``delete`` change it article by
article. A backend that can only build says so by raising ``WritesNotSupportedError``.

The read side returns *candidates*: passages scored by the backend (the fused score, the
cosine, the lexical score) in rank order, with the question's reference cosine for
abstention. What the user sees (duplicate collapse, highlight, abstention) is computed from
them by ``index/answers.py``, the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from akhbar.corpus.models import Article, Chunk

Mode = Literal["hybrid", "dense", "lexical"]
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class IndexStateError(RuntimeError):
    """Base class for index problems a user can act on."""


class NoIndexError(IndexStateError):
    pass


class IndexIntegrityError(IndexStateError):
    pass


class BuildInProgressError(IndexStateError):
    pass


class IndexUnavailableError(IndexStateError):
    """The index's server (a database) cannot be reached now: try again shortly."""


class WritesNotSupportedError(IndexStateError, NotImplementedError):
    """The backend builds whole versions only: rebuild with `akhbar index`."""


@dataclass(frozen=True)
class Filters:
    languages: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None


NO_FILTERS = Filters()


@dataclass(frozen=True, slots=True)
class Passage:
    """One indexed passage with what a citation shows."""

    chunk: Chunk  # id, article id, offsets into the article, text, language, sentences
    title: str
    outlet: str | None
    url: str | None
    published: date | None
    kind: str
    # One vector per sentence of the chunk, pooled at index time, for the highlight (None
    # where the index was built without them).
    sentence_vectors: np.ndarray | None = None


@dataclass(frozen=True)
class AnswerParams:
    """Query-time settings of the answer layer, recorded with the index it was built for."""

    abstain_threshold: float = 0.0
    highlight_term_weight: float = 0.01
    # The rerank of the first candidates (index/rerank.py): how many, and the weights of
    # what it adds to the score: the best sentence's cosine, the second view's cosine and
    # the term coverage.
    rerank_depth: int = 0
    sentence_weight: float = 0.0  # with the second view
    second_view_weight: float = 0.0
    sentence_weight_alone: float = 0.0  # without it
    coverage_weight: float = 0.0  # the question's terms a same-language passage holds


@dataclass(frozen=True)
class Candidates:
    """Scored passages in rank order (best first), before collapse and highlight.

    ``keys`` are the backend's own handles, passed back to ``IndexReader.passages``; the
    three score arrays are aligned with them."""

    keys: np.ndarray
    score: np.ndarray  # what the mode ranks by (fused, cosine or BM25)
    dense: np.ndarray  # cosine to the question
    lexical: np.ndarray  # BM25, the question analysed in the passage's language
    # The question's reference cosine (its n-th best among the dense candidates):
    # abstention reads how far a passage's cosine stands above it.
    reference: float

    @classmethod
    def empty(cls) -> Candidates:
        none = np.zeros(0, np.float32)
        return cls(np.zeros(0, np.int64), none, none, none, 0.0)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class DeltaStatus:
    """What a serving process reports about writes not yet folded into its index version
    (a backend that keeps them apart, as the local one's delta; for metrics)."""

    chunks: int
    segments: int
    age_s: float  # since the oldest write still in the delta
    behind: int | None  # store writes committed after the watermark (None: not followed)


@dataclass
class BuildReport:
    version: str
    path: Path | None  # where the version lives, for backends that keep it in files
    articles: int
    chunks: int
    encoded: int
    reused: int
    seconds: float
    encode_seconds: float
    pruned: list[str] = field(default_factory=list)


class IndexReader(Protocol):
    """One opened index version. Safe to share between threads."""

    version: str
    manifest: dict
    answer_params: AnswerParams

    @property
    def count(self) -> int: ...

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        k: int,
        filters: Filters = ...,
        mode: Mode = ...,
    ) -> Candidates: ...

    def passages(self, keys: Sequence[int] | np.ndarray) -> list[Passage]:
        """The passages of ``keys`` (from ``search``), in the same order."""
        ...

    def close(self) -> None: ...


class IndexBackend(Protocol):
    """Writes an index and opens its versions."""

    name: str

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Progress | None = None,
    ) -> BuildReport: ...

    def upsert(self, articles: Iterable[Article]) -> str:
        """Add or replace these articles' passages; returns the new version."""
        ...

    def delete(self, article_ids: Iterable[str]) -> str:
        """Remove these articles' passages; returns the new version."""
        ...

    def current_version(self) -> str | None: ...

    def open(self, version: str | None = None) -> IndexReader: ...
