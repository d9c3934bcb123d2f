"""The answer layer: from a backend's scored candidates to what a user is shown.

The same for every backend: drop deleted articles, collapse duplicate passages (the same
headline or paragraph from two sources), mark the sentence that answers (the highlight),
and say whether anything answers at all (abstention). Used by the QA engine (API and CLI)
and by eval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from akhbar.corpus.text import fold
from akhbar.index.analysis import LANGUAGES, analyze_cached
from akhbar.index.base import AnswerParams, Candidates, IndexReader, Passage

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    dense: float
    lexical: float
    highlight: tuple[int, int]
    # How far the cosine stands above the question's reference cosine: what abstention
    # reads.
    margin: float
    answers: bool  # the margin reaches the abstention threshold


@dataclass(frozen=True)
class Answer:
    question: str
    question_language: str
    answerable: bool
    hits: list[Hit]
    index_version: str
    took_ms: float


def top_hits(
    reader: IndexReader,
    candidates: Candidates,
    question: str,
    question_language: str,
    query_vector: np.ndarray,
    k: int,
    *,
    excluded: Callable[[str], bool] = lambda _article_id: False,
) -> list[Hit]:
    """The first ``k`` candidates that are neither excluded nor a duplicate of a better one,
    each with its highlight and margin. Passages are read a window at a time (one query
    to the backend per window, usually one)."""
    params = reader.answer_params
    hits: list[Hit] = []
    seen: set[str] = set()
    q_terms = query_terms(question, question_language)
    window = max(2 * k, 16)
    for start in range(0, len(candidates), window):
        stop = min(start + window, len(candidates))
        passages = reader.passages(candidates.keys[start:stop])
        for pos, passage in zip(range(start, stop), passages, strict=True):
            if excluded(passage.chunk.article_id):
                continue
            key = _SPACE.sub(" ", fold(passage.chunk.text)).strip()
            if key in seen:
                continue
            seen.add(key)
            margin = float(candidates.dense[pos]) - candidates.reference
            hits.append(
                Hit(
                    passage=passage,
                    score=float(candidates.score[pos]),
                    dense=float(candidates.dense[pos]),
                    lexical=float(candidates.lexical[pos]),
                    highlight=highlight(passage, q_terms, query_vector, params),
                    margin=margin,
                    answers=margin >= params.abstain_threshold,
                )
            )
            if len(hits) >= k:
                return hits
    return hits


def answerable(hits: list[Hit], params: AnswerParams) -> bool:
    """From the cosine, not the fused score: the BM25 bonus says "shares words", which
    unanswerable near-miss questions do as well. The best margin among the passages
    returned: whether anything stands out does not depend on how they were ordered."""
    return bool(hits) and max(h.margin for h in hits) >= params.abstain_threshold


def query_terms(question: str, language: str) -> set[str]:
    terms = set(analyze_cached(question, language))
    for lang in LANGUAGES:
        terms |= set(analyze_cached(question, lang))
    return terms


def highlight(
    passage: Passage, q_terms: set[str], query_vector: np.ndarray, params: AnswerParams
) -> tuple[int, int]:
    """The sentence closest to the question: cosine with its pooled vector, plus a small
    bonus per shared term (numbers count double) that settles near-ties in favour of the
    sentence naming what was asked. Without sentence vectors, terms alone."""
    chunk = passage.chunk
    sentences = chunk.sentences or ((0, len(chunk.text)),)
    terms = np.array(
        [
            sum(
                2.0 if t.isdigit() else 1.0
                for t in set(analyze_cached(chunk.text[a:b], chunk.language)) & q_terms
            )
            for a, b in sentences
        ],
        np.float32,
    )
    vecs = passage.sentence_vectors
    if vecs is not None and len(vecs) == len(sentences):
        score = vecs.astype(np.float32) @ query_vector + params.highlight_term_weight * terms
    else:
        score = terms
    start, end = sentences[int(np.argmax(score))]  # the first of equals
    return int(start), int(end)
