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
from akhbar.index.answerability import (
    AnswerModel,
    Cues,
    answer_features,
    question_cues,
    sentence_features,
    shipped_model,
)
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
    # How far the cosine stands above the question's reference cosine (one of the
    # features abstention reads).
    margin: float
    answers: bool  # ``confidence`` reaches the answer model's threshold
    # P(this passage answers the question), from the answer model (index/answerability.py).
    confidence: float = 0.0


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
    model: AnswerModel | None = None,
) -> list[Hit]:
    """The first ``k`` candidates that are neither excluded nor a duplicate of a better one,
    each with its highlight and margin. Passages are read a window at a time (one query
    to the backend per window, usually one).

    ``reference``: the cosine margins are measured from (default: the candidates' own).
    Filtered candidates pass the unfiltered ranking's, so that whether a passage answers
    does not depend on which other passages the filters left (see ``verdict``).

    ``rerank``: reorder the first candidates by their best sentence, and by the second
    view where ``second`` carries the question's vector in it (``index/rerank.py``);
    eval turns it off to score one side alone.

    ``model``: the highlight and abstention coefficients (default: the shipped ones; the
    study passes the ones fitted on its training folds)."""
    params = reader.answer_params
    model = model or shipped_model()
    cues = question_cues(question, question_language)
    ref = candidates.reference if reference is None else reference
    hits: list[Hit] = []
    seen: set[str] = set()
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
            (question, question_language),
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
            hits.append(
                scored_hit(
                    passage,
                    cues,
                    query_vector,
                    model,
                    score=float(scores[rank_at]),
                    dense=float(candidates.dense[pos]),
                    lexical=float(candidates.lexical[pos]),
                    margin=float(candidates.dense[pos]) - ref,
                )
            )
            if len(hits) >= k:
                return hits
    return hits


def scored_hit(
    passage: Passage,
    cues: Cues,
    query_vector: np.ndarray,
    model: AnswerModel,
    *,
    score: float,
    dense: float,
    lexical: float,
    margin: float,
) -> Hit:
    """One hit with its highlight and its answer probability."""
    cosines = sentence_cosines(passage, query_vector)
    span = highlight(passage, cues, query_vector, model, cosines)
    x = answer_features(
        cues=cues,
        title=passage.title,
        text=passage.chunk.text,
        sentences=passage.chunk.sentences,
        language=passage.chunk.language,
        highlight=span,
        dense=dense,
        margin=margin,
        score=score,
        lexical=lexical,
        best_sentence=float(cosines.max()) if cosines is not None and len(cosines) else dense,
    )
    confidence = float(model.probability(x[None, :])[0])
    return Hit(
        passage=passage,
        score=score,
        dense=dense,
        lexical=lexical,
        highlight=span,
        margin=margin,
        answers=confidence >= model.threshold,
        confidence=confidence,
    )


def answerable(hits: list[Hit]) -> bool:
    """Whether any passage returned is flagged as answering (the answer model's
    probability over its threshold): whether one answers does not depend on how they were
    ordered."""
    return any(h.answers for h in hits)


def verdict(unfiltered: list[Hit], shown: list[Hit], params: AnswerParams | None = None) -> bool:
    """Whether the corpus answers the question: read on the *unfiltered* ranking's hits,
    since filters choose what is shown, not whether the corpus knows (a ``--since`` that
    hides the answering article must not turn the verdict into "nothing answers").

    Never "no" above a shown passage flagged as answering: the shown hits are counted as
    well, so the page and the CLI cannot contradict themselves whatever the backend
    returned. (``params`` is accepted for callers that pass the reader's; the threshold
    is the answer model's.)"""
    return answerable(unfiltered) or answerable(shown)


def sentence_cosines(passage: Passage, query_vector: np.ndarray) -> np.ndarray | None:
    vecs = passage.sentence_vectors
    sentences = passage.chunk.sentences or ((0, len(passage.chunk.text)),)
    if vecs is None or len(vecs) != len(sentences):
        return None
    return vecs.astype(np.float32) @ query_vector


def highlight(
    passage: Passage,
    cues: Cues,
    query_vector: np.ndarray,
    model: AnswerModel | None = None,
    cosines: np.ndarray | None = None,
) -> tuple[int, int]:
    """The sentence that answers, by the answer model's highlight scorer: its own vector's
    cosine to the question (relative to the passage's best), whether it opens the passage,
    whether it holds a number (a name) the question does not while the question asks for
    one, and whether it is a mere fragment (a dateline). Without sentence vectors the
    other features alone decide."""
    model = model or shipped_model()
    chunk = passage.chunk
    sentences = chunk.sentences or ((0, len(chunk.text)),)
    if cosines is None:
        cosines = sentence_cosines(passage, query_vector)
    x = sentence_features(chunk.text, sentences, chunk.language, cosines, cues)
    start, end = sentences[int(np.argmax(model.highlight(x)))]  # the first of equals
    return int(start), int(end)
