"""Reranking the top candidates with what a whole-passage vector misses.

A passage vector averages every sentence of the passage; a question is usually answered by
one of them. Each sentence is also encoded on its own at index time (``index/prepare.py``),
and the best sentence's cosine, added to the fused score, lifts the passage holding the
one sentence that matches, which matters most across languages (English or Arabic
questions over Spanish passages). A second multilingual model (``index/second_view.py``),
where the index and the question both have its vectors, adds its cosine with a small
weight: a second opinion that errs differently. Only the first ``rerank_depth`` candidates
are reordered; the rest keep the backend's order, and neither the cosine nor the margin
abstention reads changes. Weights are fitted offline on dev splits
(``eval/rerank_study.py``; the figures are in eval/results/rerank-study.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from akhbar.index.base import AnswerParams, Passage
from akhbar.index.second_view import SecondQuery


def best_sentence_cosine(passage: Passage, query_vector: np.ndarray, fallback: float) -> float:
    """The highest cosine between the question and one of the passage's sentences;
    ``fallback`` (the passage's own cosine) where the index holds no sentence vectors."""
    vecs = passage.sentence_vectors
    if vecs is None or len(vecs) == 0:
        return fallback
    return float((vecs.astype(np.float32) @ query_vector).max())


def rerank_order(
    scores: np.ndarray,
    dense: np.ndarray,
    passages: Sequence[Passage],
    query_vector: np.ndarray,
    params: AnswerParams,
    second: SecondQuery | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The new order of the first ``len(passages)`` candidates (indices into them) and
    their new scores, in that order. Candidates past ``params.rerank_depth`` keep their
    place and score; none moves past the reranked block."""
    n = len(passages)
    depth = min(params.rerank_depth, n)
    new = np.asarray(scores[:n], np.float32).copy()
    if depth <= 1:
        return np.arange(n), new
    head = passages[:depth]
    with_second = second is not None and params.second_view_weight > 0
    # Fitted with and without the second view: each carries part of the other's signal.
    weight = params.sentence_weight if with_second else params.sentence_weight_alone
    if weight:
        best = [
            best_sentence_cosine(p, query_vector, float(d))
            for p, d in zip(head, dense[:depth], strict=True)
        ]
        new[:depth] += weight * np.array(best, np.float32)
    if second is not None and with_second:
        vecs = second.view.passages([p.chunk.text for p in head])
        new[:depth] += params.second_view_weight * (vecs @ second.vector)
    first = np.argsort(-new[:depth], kind="stable")
    order = np.concatenate([first, np.arange(depth, n)])
    return order, new[order]
