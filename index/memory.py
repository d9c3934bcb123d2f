"""The in-memory reference backend: numpy brute force and bm25s, in this process only.

Small and exact, it keeps the contract in ``index/base.py`` honest beside the local backend
(the conformance suite runs both) and scores the same way: exact cosines, the same BM25
and fusion. Writes are article by article; every write makes a new immutable version, and
a reader opened earlier keeps the version it opened.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article
from akhbar.index.base import (
    NO_FILTERS,
    BuildReport,
    Candidates,
    Filters,
    IndexIntegrityError,
    Mode,
    NoIndexError,
    Passage,
    Progress,
)
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams, rank
from akhbar.index.lexical import LexicalIndex
from akhbar.index.prepare import ChunkingParams, prepare_cached


@dataclass(frozen=True)
class _Entry:
    passage: Passage
    vector: np.ndarray


class MemoryReader:
    """One version: its passages, their vectors and a BM25 index over them."""

    def __init__(self, version: str, entries: list[_Entry], fusion: FusionParams) -> None:
        self.version = version
        self.fusion = fusion
        self.answer_params = fusion.answer_params()
        self.manifest = {"version": version, "backend": "memory", "fusion": fusion.to_dict()}
        self._passages = [e.passage for e in entries]
        dim = entries[0].vector.shape[0] if entries else 0
        self._vectors = (
            np.stack([e.vector for e in entries]) if entries else np.zeros((0, dim), np.float32)
        )
        self._languages = sorted({p.chunk.language for p in self._passages})
        self._lang_codes = np.array(
            [self._languages.index(p.chunk.language) for p in self._passages], np.int64
        )
        self._lexical = (
            LexicalIndex.build(
                [p.chunk.text for p in self._passages], [p.chunk.language for p in self._passages]
            )
            if entries
            else None
        )

    @property
    def count(self) -> int:
        return len(self._passages)

    def _mask(self, filters: Filters) -> np.ndarray:
        wanted_outlets = {o.casefold() for o in filters.outlets}
        since, until = filters.since or date.min, filters.until or date.max

        def keep(p: Passage) -> bool:
            published: date | None = p.published
            return (
                (not filters.languages or p.chunk.language in filters.languages)
                and (not wanted_outlets or (p.outlet or "").casefold() in wanted_outlets)
                and (filters.since is None or (published is not None and published >= since))
                and (filters.until is None or (published is not None and published <= until))
            )

        return np.array([keep(p) for p in self._passages], bool)

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        k: int,
        filters: Filters = NO_FILTERS,
        mode: Mode = "hybrid",
    ) -> Candidates:
        if self._lexical is None:
            return Candidates.empty()
        mask = self._mask(filters)
        if not mask.any():
            return Candidates.empty()
        n_cand = max(self.fusion.candidates, 4 * k)
        cosine = self._vectors @ query_vector.astype(np.float32)
        allowed = np.flatnonzero(mask)
        top_dense = allowed[np.argsort(-cosine[allowed], kind="stable")[:n_cand]]
        lex_all = self._lexical.scores_in_passage_language(
            question, self._lang_codes, self._languages, mask
        )
        matched = np.flatnonzero(lex_all > 0)
        top_lex = matched[np.argsort(-lex_all[matched], kind="stable")[:n_cand]]
        dense_set = set(top_dense.tolist())
        keys = np.array([*top_dense, *(r for r in top_lex if int(r) not in dense_set)], np.int64)
        return rank(
            keys,
            cosine[keys],
            lex_all[keys],
            self._lang_codes[keys],
            len(top_dense),
            self.fusion,
            mode,
        )

    def passages(self, keys: Sequence[int] | np.ndarray) -> list[Passage]:
        return [self._passages[int(k)] for k in keys]

    def close(self) -> None:
        pass


class MemoryIndex:
    name = "memory"
    KEEP_VERSIONS = 3

    def __init__(
        self,
        encoder: Encoder,
        *,
        cache_path: Path | None,
        chunking: ChunkingParams,
        fusion: FusionParams,
    ) -> None:
        self.encoder = encoder
        self.cache_path = cache_path
        self.chunking = chunking
        self.fusion = fusion
        self._lock = threading.Lock()
        self._by_article: dict[str, list[_Entry]] = {}
        self._versions: dict[str, MemoryReader] = {}
        self._current: str | None = None
        self._counter = itertools.count(1)

    def _prepare(
        self, articles: Iterable[Article], progress: Progress | None = None
    ) -> tuple[dict[str, list[_Entry]], int, float]:
        prep = prepare_cached(
            articles,
            encoder=self.encoder,
            cache_path=self.cache_path,
            chunking=self.chunking,
            progress=progress,
        )
        out: dict[str, list[_Entry]] = {a: [] for a in prep.articles}
        sentences = prep.encoded.sentences
        for i, chunk in enumerate(prep.chunks):
            a = prep.articles[chunk.article_id]
            passage = Passage(
                chunk,
                a.title,
                a.outlet,
                a.url,
                a.published,
                a.kind,
                None if sentences is None else np.asarray(sentences[i], np.float16),
            )
            out[chunk.article_id].append(_Entry(passage, prep.encoded.vectors[i]))
        return out, prep.encoded.encoded, prep.encoded.seconds

    def _commit(self, by_article: dict[str, list[_Entry]]) -> str:
        """Call with the lock held."""
        name = f"m{next(self._counter):06d}"
        entries = [e for es in by_article.values() for e in es]
        reader = MemoryReader(name, entries, self.fusion)
        reader.manifest |= {
            "model": self.encoder.name,
            "dimension": self.encoder.dimension,
            "counts": {"articles": len(by_article), "chunks": len(entries)},
            "chunking": asdict(self.chunking),
        }
        self._versions[name] = reader
        for old in list(self._versions)[: -self.KEEP_VERSIONS]:
            del self._versions[old]  # readers already opened keep theirs
        self._by_article = by_article
        self._current = name
        return name

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Progress | None = None,
    ) -> BuildReport:
        t0 = time.perf_counter()
        by_article, encoded, seconds = self._prepare(articles, progress)
        chunks = sum(len(es) for es in by_article.values())
        if not chunks:
            raise ValueError("nothing to index: the store has no articles (run `akhbar ingest`)")
        with self._lock:
            name = self._commit(by_article)
        return BuildReport(
            version=name,
            path=None,
            articles=len(by_article),
            chunks=chunks,
            encoded=encoded,
            reused=chunks - encoded,
            seconds=time.perf_counter() - t0,
            encode_seconds=seconds,
        )

    def upsert(self, articles: Iterable[Article]) -> str:
        fresh, _, _ = self._prepare(articles)
        with self._lock:
            return self._commit({**self._by_article, **fresh})

    def delete(self, article_ids: Iterable[str]) -> str:
        doomed = set(article_ids)
        with self._lock:
            return self._commit({a: es for a, es in self._by_article.items() if a not in doomed})

    def current_version(self) -> str | None:
        return self._current

    def open(self, version: str | None = None) -> MemoryReader:
        name = version or self._current
        if name is None:
            raise NoIndexError("no index in memory: build one first")
        try:
            return self._versions[name]
        except KeyError:
            raise IndexIntegrityError(f"no index version {name!r} in memory") from None
