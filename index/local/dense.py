"""The dense side: a FAISS inner-product index over normalised vectors, keyed by our ids.

FAISS rows never leave this module: every vector is added under a stable 64-bit id derived
from the chunk id, so deletes and rebuilds can never shift which vector means what.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import ThreadpoolController


def chunk_int_id(chunk_id: str) -> int:
    """Stable signed 63-bit id for a chunk id (FAISS ids are int64)."""
    return int.from_bytes(hashlib.sha1(chunk_id.encode("utf-8")).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class DenseParams:
    """How the FAISS index is built, chosen by corpus size and recorded in the manifest."""

    kind: str  # "flat" (exact) | "hnsw"
    storage: str = "fp32"  # "fp32" | "sq8"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 256

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DenseSizing:
    """Which FAISS index a corpus of n chunks gets.

    Exact search is one matrix-vector product per question: ~8 ms at 50k chunks on two
    cores, ~20 ms at 100k, past the latency budget; above ``exact_max`` an HNSW graph
    answers in about a millisecond. Its vectors stay fp32 (best recall) until
    ``compact_min``, where fp32 alone would be 1.5 GB at a million chunks: above it they
    are 8-bit scalar-quantised, a quarter of the memory, and the candidates are rescored
    exactly from the fp32 vectors on disk.

    HNSW rather than IVF for the compact tier: on the 14,884 real passage vectors of the
    embedding cache (eval-set questions, candidates rescored), IVF scanning 1.6% of its
    lists served recall@10 0.51 and needed a quarter of them for 0.98, where HNSW+SQ8 at
    efSearch 128 served 0.994. (IVF did well only on the synthetic 1M tier, whose
    near-copies of 368 passages are exactly the clusters k-means finds.)
    """

    exact_max: int = 50_000
    compact_min: int = 500_000
    # The compact tier's efSearch, the smallest of 256, 512, 1024, 1536, 2048, 3072 that
    # served recall@10 >= 0.95 on the synthetic 1M tier, whose ~2,700 near-copies of each
    # passage need a wide beam: 0.849, 0.909, 0.945, 0.955, 0.957, 0.969; the HNSW search
    # itself 1.7, 2.7, 4.3, 5.0, 6.5, 11.5 ms p50 a question on 2 cores.
    compact_ef_search: int = 1536

    def params(self, n: int) -> DenseParams:
        if n <= self.exact_max:
            return DenseParams(kind="flat", storage="fp32")
        if n <= self.compact_min:
            return DenseParams(kind="hnsw", storage="fp32")
        return DenseParams(kind="hnsw", storage="sq8", ef_search=self.compact_ef_search)


def _qtype(storage: str) -> int:
    if storage == "sq8":
        return faiss.ScalarQuantizer.QT_8bit
    raise ValueError(f"unknown dense storage {storage!r}")


def _factory(dim: int, params: DenseParams) -> faiss.Index:
    ip = faiss.METRIC_INNER_PRODUCT
    if params.kind == "flat":
        if params.storage == "fp32":
            return faiss.IndexFlatIP(dim)
        return faiss.IndexScalarQuantizer(dim, _qtype(params.storage), ip)
    if params.kind == "hnsw":
        if params.storage == "fp32":
            index = faiss.IndexHNSWFlat(dim, params.hnsw_m, ip)
        else:
            index = faiss.IndexHNSWSQ(dim, _qtype(params.storage), params.hnsw_m, ip)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
        return index
    raise ValueError(f"unknown dense index kind {params.kind!r}")


def _tune(index: faiss.Index, params: DenseParams) -> None:
    """Query-time parameters, which FAISS does not keep in the saved file."""
    outer = faiss.downcast_index(index)
    inner = faiss.downcast_index(outer.index) if hasattr(outer, "id_map") else outer
    if params.kind == "hnsw":
        inner.hnsw.efSearch = params.ef_search


class ExactVectors:
    """The fp32 vectors of a quantised index, read from disk row by row on demand.

    pread, not a memory map: a question needs ~100 scattered rows of a 1.5 GB file
    (a million chunks), and mapped pages count in the server's resident memory (with the
    kernel's fault-around, 64 KB per row touched), where read pages stay in the kernel's
    page cache, shared and reclaimable.
    """

    def __init__(self, path: Path) -> None:
        self._fd = -1
        header = np.load(path, mmap_mode="r")
        if header.dtype != np.float32 or header.ndim != 2 or not header.flags.c_contiguous:
            raise ValueError(f"{path}: expected a C-ordered float32 matrix")
        self.shape: tuple[int, int] = header.shape
        self._offset = int(header.offset)
        del header
        self._fd = os.open(path, os.O_RDONLY)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        n, dim = self.shape
        out = np.empty((len(rows), dim), np.float32)
        for i, r in enumerate(rows.tolist()):
            if not 0 <= r < n:
                raise IndexError(f"vector row {r} out of range (0..{n - 1})")
            data = os.pread(self._fd, dim * 4, self._offset + r * dim * 4)
            if len(data) != dim * 4:
                raise OSError(f"short read of vector row {r}")
            out[i] = np.frombuffer(data, np.float32)
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


class DenseIndex:
    FILENAME = "dense.faiss"
    # fp32 vectors beside a quantised index, row-aligned with the chunk table.
    EXACT_FILENAME = "vectors.f32.npy"

    def __init__(
        self,
        index: faiss.Index,
        params: DenseParams,
        exact: np.ndarray | ExactVectors | None = None,
    ) -> None:
        self._index = index
        self.params = params
        _tune(index, params)
        # A quantised index finds candidates; their cosines are then computed from these
        # fp32 vectors (in memory after a build, read from disk once saved): 8-bit codes
        # cannot order the many near-equal passages of a million-chunk corpus (recall@10
        # measured in bench scale), the exact vectors can.
        self._exact = exact
        # For the exact fp32 index, a zero-copy numpy view of its vectors: one BLAS
        # matrix-vector product beats FAISS's single-query scan (no SIMD in the generic
        # faiss-cpu build: 100k chunks, ~50 ms vs ~20 ms on 2 cores).
        self._matrix: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._blas = None
        if params.kind == "flat" and params.storage == "fp32" and index.ntotal > 0:
            # One question's product runs on one BLAS thread: a matrix-vector product gains
            # little from more, and idle BLAS threads spin against the question encoder's
            # on the same cores (measured: its next question 15 -> 35 ms on 2 cores).
            self._blas = ThreadpoolController().select(user_api="blas")
            inner = faiss.downcast_index(index.index)
            self._matrix = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(
                inner.ntotal, inner.d
            )
            self._ids = faiss.vector_to_array(index.id_map)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, params: DenseParams) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        inner = _factory(vectors.shape[1], params)
        if not inner.is_trained:
            inner.train(vectors)
        index = faiss.IndexIDMap2(inner)
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        return cls(index, params, vectors if params.storage != "fp32" else None)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; ``allowed`` restricts to those int ids."""
        k = max(1, min(k, self.count))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            if self._matrix is None:
                return self._index.search(queries, k)
            if queries.shape[0] == 1:
                with self._blas.limit(limits=1):
                    scores = queries @ self._matrix.T
            else:
                scores = queries @ self._matrix.T
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            rows = np.take_along_axis(top, order, axis=1)
            return np.take_along_axis(top_scores, order, axis=1), self._ids[rows]
        if len(allowed) == 0:
            n = queries.shape[0]
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.params.kind == "hnsw":
            search_params = faiss.SearchParametersHNSW(sel=selector, efSearch=self.params.ef_search)
        else:
            search_params = faiss.SearchParameters(sel=selector)
        return self._index.search(queries, min(k, len(allowed)), params=search_params)

    def exact_scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray | None:
        """fp32 cosines of these rows for a quantised index (None: FAISS's are exact)."""
        if self._exact is None:
            return None
        order = np.argsort(rows)  # ascending rows: reads in file order
        ordered = rows[order]
        vectors = (
            self._exact.rows(ordered)
            if isinstance(self._exact, ExactVectors)
            else self._exact[ordered]
        )
        out = np.empty(len(rows), np.float32)
        out[order] = vectors @ query
        return out

    def stored_vectors(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The fp32 vectors of these rows (and their ids): exact, read from the fp32 copy
        beside a quantised index, or from FAISS's own fp32 storage."""
        if isinstance(self._exact, ExactVectors):
            return self._exact.rows(np.asarray(rows, np.int64))
        if isinstance(self._exact, np.ndarray):
            return self._exact[rows]
        return self.reconstruct(ids)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors for these ids (approximate for quantised storage)."""
        return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    def close(self) -> None:
        if isinstance(self._exact, ExactVectors):
            self._exact.close()

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / self.FILENAME))
        if isinstance(self._exact, np.ndarray):
            np.save(directory / self.EXACT_FILENAME, self._exact)

    @classmethod
    def load(cls, directory: Path, params: DenseParams) -> DenseIndex:
        index = faiss.read_index(str(directory / cls.FILENAME))
        exact_path = directory / cls.EXACT_FILENAME
        exact = ExactVectors(exact_path) if exact_path.exists() else None
        return cls(index, params, exact)
