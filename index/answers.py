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
from akhbar.index.rerank import rerank_order
from akhbar.index.second_view import SecondQuery

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
    reference: float | None = None,
    rerank: bool = True,
    second: SecondQuery | None = None,
) -> list[Hit]:
    """The first ``k`` candidates that are neither excluded nor a duplicate of a better one,
    each with its highlight and margin. Passages are read a window at a time (one query
    to the backend per window, usually one).

    ``reference``: the cosine margins are measured from (default: the candidates' own).
    Filtered candidates pass the unfiltered ranking's, so that whether a passage answers
    does not depend on which other passages the filters left (see ``verdict``).

    ``rerank``: reorder the first candidates by their best sentence, and by the second
    view where ``second`` carries the question's vector in it (``index/rerank.py``);
    eval turns it off to score one side alone."""
    params = reader.answer_params
    ref = candidates.reference if reference is None else reference
    hits: list[Hit] = []
    seen: set[str] = set()
    q_terms = query_terms(question, question_language)
    window = max(2 * k, 16)
    n = len(candidates)
    order = np.arange(n)
    scores = np.asarray(candidates.score, np.float32)
    fetched: dict[int, Passage] = {}
    depth = min(params.rerank_depth, n) if rerank else 0
    if depth > 1:
        head = max(depth, min(window, n))
        first = reader.passages(candidates.keys[:head])
        sub, new = rerank_order(
            candidates.score[:head],
            candidates.dense[:head],
            first,
            query_vector,
            params,
            second,
        )
        order = np.concatenate([sub, np.arange(head, n)])
        scores = np.concatenate([new, scores[head:]])
        fetched = dict(enumerate(first))
    for start in range(0, n, window):
        positions = [int(p) for p in order[start : start + window]]
        missing = [p for p in positions if p not in fetched]
        if missing:
            fetched.update(zip(missing, reader.passages(candidates.keys[missing]), strict=True))
        for rank_at, pos in enumerate(positions, start):
            passage = fetched[pos]
            if excluded(passage.chunk.article_id):
                continue
            key = _SPACE.sub(" ", fold(passage.chunk.text)).strip()
            if key in seen:
                continue
            seen.add(key)
            margin = float(candidates.dense[pos]) - ref
            hits.append(
                Hit(
                    passage=passage,
                    score=float(scores[rank_at]),
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


def verdict(unfiltered: list[Hit], shown: list[Hit], params: AnswerParams) -> bool:
    """Whether the corpus answers the question: read on the *unfiltered* ranking's hits,
    since filters choose what is shown, not whether the corpus knows (a ``--since`` that
    hides the answering article must not turn the verdict into "nothing answers").

    Never "no" above a shown passage flagged as answering: with margins measured from the
    unfiltered reference (``top_hits(..., reference=...)``) a shown passage that answers
    is also among the unfiltered candidates, but the shown hits are counted as well, so
    the page and the CLI cannot contradict themselves whatever the backend returned."""
    return answerable(unfiltered, params) or any(h.answers for h in shown)


def query_terms(question: str, language: str) -> set[str]:
    terms = set(analyze_cached(question, language))
    for lang in LANGUAGES:
        terms |= set(analyze_cached(question, lang))
    return terms


def highlight(
    passage: Passage, q_terms: set[str], query_vector: np.ndarray, params: AnswerParams
) -> tuple[int, int]:
    """The sentence closest to the question: cosine with its own vector, plus a small
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
