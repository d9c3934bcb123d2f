"""Reranking the top candidates with what a whole-passage vector misses.

A passage vector averages every sentence of the passage; a question is usually answered by
one of them. Each sentence is also encoded on its own at index time (``index/prepare.py``),
and the best sentence's cosine, added to the fused score, lifts the passage holding the
one sentence that matches, which matters most across languages (English or Arabic
questions over Spanish passages). A second multilingual model (``index/second_view.py``),
where the index and the question both have its vectors, adds its cosine with a small
weight: a second opinion that errs differently. A passage in the question's own language
is also scored by the share of the question's terms it holds, each weighted by its IDF
among the reranked passages, against the best such share: BM25 in the fused score rewards
repeating a term, this rewards holding all of them, the rare ones first. Only the first
``rerank_depth`` candidates are reordered; the rest keep the backend's order, and neither
the cosine nor the margin abstention reads changes. Weights are fitted offline on dev splits
(``eval/rerank_study.py``; the figures are in eval/results/rerank-study.md).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from akhbar.index.analysis import LANGUAGES, analyze_cached, passage_terms
from akhbar.index.base import AnswerParams, Passage
from akhbar.index.second_view import SecondQuery


def best_sentence_cosine(passage: Passage, query_vector: np.ndarray, fallback: float) -> float:
    """The highest cosine between the question and one of the passage's sentences;
    ``fallback`` (the passage's own cosine) where the index holds no sentence vectors."""
    vecs = passage.sentence_vectors
    if vecs is None or len(vecs) == 0:
        return fallback
    return float((vecs.astype(np.float32) @ query_vector).max())


def term_coverage(question: str, language: str, passages: Sequence[Passage]) -> np.ndarray:
    """Per passage, how far its share of the question's IDF-weighted terms falls short of
    the best share among ``passages`` in the question's language (IDF counted among those):
    0 for the best, below 0 for the others, and 0 for every passage in another language,
    as for all where the question's language has no full analysis (stopwords and a stemmer)
    or the question no terms.

    Shares are compared only among passages analysed as the question is. Added as they are,
    they lifted every passage in the question's language above the others: on the eval
    set, French questions over Spanish articles fell from hit@1 0.947 to 0.816 behind
    French Wikipedia paragraphs on the same subject. Measured from the best, the feature
    orders the question's language among itself and never lifts it over another."""
    out = np.zeros(len(passages), np.float32)
    if language not in LANGUAGES:
        return out
    question_terms = set(analyze_cached(question, language))
    same = [i for i, p in enumerate(passages) if p.chunk.language == language]
    if not question_terms or not same:
        return out
    held = {
        i: question_terms
        & passage_terms(passages[i].chunk.text, passages[i].chunk.sentences, language)
        for i in same
    }
    df = Counter(t for terms in held.values() for t in terms)
    n = len(same)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in question_terms}
    total = sum(idf.values())
    share = {i: sum(idf[t] for t in terms) / total for i, terms in held.items()}
    best = max(share.values())
    for i, value in share.items():
        out[i] = value - best
    return out


def rerank_order(
    scores: np.ndarray,
    dense: np.ndarray,
    passages: Sequence[Passage],
    query_vector: np.ndarray,
    params: AnswerParams,
    second: SecondQuery | None = None,
    question: tuple[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The new order of the first ``len(passages)`` candidates (indices into them) and
    their new scores, in that order. Candidates past ``params.rerank_depth`` keep their
    place and score; none moves past the reranked block. ``question``: its text and
    language, for the term coverage (none without it)."""
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
    if question is not None and params.coverage_weight:
        new[:depth] += params.coverage_weight * term_coverage(*question, head)
    first = np.argsort(-new[:depth], kind="stable")
    order = np.concatenate([first, np.arange(depth, n)])
    return order, new[order]
