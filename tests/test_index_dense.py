"""The dense side on its own: index choice by size, quantised storage and exact rescoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from akhbar.index.local.dense import DenseIndex, DenseParams, DenseSizing, ExactVectors


def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_sizing_picks_exact_then_graph_then_compact_graph() -> None:
    sizing = DenseSizing(exact_max=100, compact_min=1000, compact_ef_search=777)
    assert sizing.params(100) == DenseParams(kind="flat", storage="fp32")
    assert sizing.params(101) == DenseParams(kind="hnsw", storage="fp32")
    compact = sizing.params(1001)
    assert (compact.kind, compact.storage, compact.ef_search) == ("hnsw", "sq8", 777)


def test_quantised_index_rescores_candidates_from_fp32_vectors_on_disk(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 3000)
    ids = np.arange(3000, dtype=np.int64) * 11 + 5
    queries = _unit(rng, 20)
    params = DenseSizing(exact_max=0, compact_min=0).params(len(vectors))
    DenseIndex.build(vectors, ids, params).save(tmp_path)
    assert (tmp_path / DenseIndex.EXACT_FILENAME).exists()

    dense = DenseIndex.load(tmp_path, params)
    try:
        truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        scores, got = dense.search(queries, 100)
        hits = 0
        for q, found, true_rows in zip(queries, got, truth, strict=True):
            rows = (found[found >= 0] - 5) // 11
            exact = dense.exact_scores(rows, q)
            # Read back from disk, the fp32 cosines are the ones computed in memory.
            np.testing.assert_allclose(exact, vectors[rows] @ q, rtol=0, atol=1e-6)
            hits += len(set(rows[np.argsort(-exact)[:10]].tolist()) & set(true_rows.tolist()))
        assert hits / truth.size >= 0.95
        # 8-bit codes alone are approximate: what the rescoring is there for.
        assert not np.allclose(scores[0][:5], np.sort(queries[0] @ vectors.T)[::-1][:5], atol=1e-6)
    finally:
        dense.close()


def test_fp32_index_needs_no_rescoring(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 200)
    dense = DenseIndex.build(vectors, np.arange(200, dtype=np.int64), DenseParams(kind="flat"))
    dense.save(tmp_path)
    assert not (tmp_path / DenseIndex.EXACT_FILENAME).exists()
    assert (
        DenseIndex.load(tmp_path, DenseParams(kind="flat")).exact_scores(np.arange(3), vectors[0])
        is None
    )


def test_exact_vectors_reject_rows_outside_the_file(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _unit(np.random.default_rng(2), 4))
    exact = ExactVectors(tmp_path / "v.npy")
    try:
        assert exact.rows(np.array([3, 0])).shape == (2, 32)
        with pytest.raises(IndexError, match="out of range"):
            exact.rows(np.array([4]))
    finally:
        exact.close()
    np.save(tmp_path / "w.npy", np.zeros((4, 8), np.float64))
    with pytest.raises(ValueError, match="float32"):
        ExactVectors(tmp_path / "w.npy")
