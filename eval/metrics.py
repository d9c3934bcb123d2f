"""Retrieval, answer and abstention metrics: pure functions over plain dicts.

A *run* maps a query id to its ranked document ids (best first); *qrels* map a query id
to ``{doc_id: relevance}`` where relevance > 0 means relevant. Per-query functions return
``dict[qid, float]`` so callers can slice before averaging; ``mean`` does the averaging.

Queries are taken from the qrels: a query missing from the run scores 0 (the system
returned nothing), and run entries without qrels are ignored, as in trec_eval and ranx.
Definitions follow ranx: AP divides by *all* relevant documents, nDCG uses linear gains
``rel / log2(rank + 1)`` by default with the ideal ranking built from the qrels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]
Gain = Literal["linear", "exponential"]


@dataclass(frozen=True, slots=True)
class _Judged:
    """Top-k relevance of every query laid out as matrices, so metrics are array maths."""

    qids: list[str]
    rel: np.ndarray  # (n_queries, k) relevance grade of the doc at each rank, 0 if none
    ideal: np.ndarray  # (n_queries, k) qrels grades sorted descending, zero-padded
    n_relevant: np.ndarray  # (n_queries,) count of docs with grade > 0


def _judge(run: Run, qrels: Qrels, k: int) -> _Judged:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    qids = list(qrels)
    rel = np.zeros((len(qids), k), dtype=np.float64)
    ideal = np.zeros((len(qids), k), dtype=np.float64)
    n_relevant = np.zeros(len(qids), dtype=np.float64)
    for i, qid in enumerate(qids):
        judged = qrels[qid]
        seen: set[str] = set()
        rank = 0
        # A doc listed twice must not earn credit twice.
        for doc in run.get(qid, ()):
            if rank == k:
                break
            if doc in seen:
                continue
            seen.add(doc)
            rel[i, rank] = max(judged.get(doc, 0), 0)
            rank += 1
        grades = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
        ideal[i, : len(grades)] = grades
        n_relevant[i] = sum(1 for g in judged.values() if g > 0)
    return _Judged(qids, rel, ideal, n_relevant)


def _per_query(j: _Judged, values: np.ndarray) -> dict[str, float]:
    return {qid: float(v) for qid, v in zip(j.qids, values, strict=True)}


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def recall_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    j = _judge(run, qrels, k)
    return _per_query(j, _safe_div((j.rel > 0).sum(axis=1).astype(np.float64), j.n_relevant))


def hit_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    j = _judge(run, qrels, k)
    return _per_query(j, (j.rel > 0).any(axis=1).astype(np.float64))


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    j = _judge(run, qrels, k)
    hits = j.rel > 0
    first = hits.argmax(axis=1)  # argmax of a bool row = first True, 0 when none
    return _per_query(j, np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0))


def _dcg(grades: np.ndarray, gain: Gain) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, grades.shape[1] + 2))
    gains = grades if gain == "linear" else np.exp2(grades) - 1.0
    return (gains * discounts).sum(axis=1)


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10, gain: Gain = "linear") -> dict[str, float]:
    """nDCG@k. ``linear`` gains match ranx/Järvelin; ``exponential`` (2^rel - 1) matches
    trec_eval's graded convention. With binary qrels the two coincide."""
    j = _judge(run, qrels, k)
    return _per_query(j, _safe_div(_dcg(j.rel, gain), _dcg(j.ideal, gain)))


def average_precision_at_k(run: Run, qrels: Qrels, k: int = 100) -> dict[str, float]:
    j = _judge(run, qrels, k)
    hits = (j.rel > 0).astype(np.float64)
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return _per_query(j, _safe_div((precision * hits).sum(axis=1), j.n_relevant))


def mean(scores: Mapping[str, float]) -> float:
    """Mean over queries; NaN for no queries, so an empty slice is never read as 0."""
    return float(np.mean(list(scores.values()))) if scores else math.nan


# --- answer strings -------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def normalise_answer(text: str) -> str:
    """Casefold and collapse whitespace; typographic apostrophes are folded because news
    text mixes ’ and ' for the same word."""
    text = text.replace("\u2019", "'").replace("\u00a0", " ").replace("\u202f", " ")
    return _SPACES.sub(" ", text.casefold()).strip()


def answer_hit_at_k(
    passages: Mapping[str, Sequence[str]],
    answers: Mapping[str, str | Sequence[str]],
    k: int,
) -> dict[str, float]:
    """1 if any of the top-k retrieved passage texts contains an accepted answer string.

    ``answers`` gives one string or several accepted variants per query; queries are taken
    from ``answers`` (pass only answerable ones).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out: dict[str, float] = {}
    for qid, accepted in answers.items():
        variants = [accepted] if isinstance(accepted, str) else list(accepted)
        needles = [normalise_answer(a) for a in variants if a.strip()]
        texts = [normalise_answer(t) for t in passages.get(qid, ())[:k]]
        out[qid] = float(any(n in t for n in needles for t in texts))
    return out


def highlight_hit(
    passages: Mapping[str, Sequence[str]],
    highlights: Mapping[str, Sequence[str]],
    answers: Mapping[str, str],
) -> dict[str, float]:
    """Of the queries whose first passage contains the answer string, 1 where the passage's
    highlighted sentence contains it too. Other queries are left out: whether the right
    passage came first is what ``answer_hit_at_k`` measures."""
    out: dict[str, float] = {}
    for qid, answer in answers.items():
        needle = normalise_answer(answer)
        top, marked = passages.get(qid, ())[:1], highlights.get(qid, ())[:1]
        if needle and top and needle in normalise_answer(top[0]):
            out[qid] = float(bool(marked) and needle in normalise_answer(marked[0]))
    return out


def highlight_answer_hit(
    highlights: Mapping[str, Sequence[str]], answers: Mapping[str, str]
) -> dict[str, float]:
    """1 where the first passage's highlighted sentence contains the answer string, over
    every answerable query: what a reader sees marked first holds the answer. Unlike
    ``highlight_hit`` it is not conditioned on the right passage coming first."""
    out: dict[str, float] = {}
    for qid, answer in answers.items():
        needle = normalise_answer(answer)
        marked = highlights.get(qid, ())[:1]
        out[qid] = float(bool(needle) and bool(marked) and needle in normalise_answer(marked[0]))
    return out


# --- abstention -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Abstention:
    """None where the set gives no data: precision when nothing abstained, recall and F1
    when no question is unanswerable (a report says n/a, not a misleading 0)."""

    precision: float | None
    recall: float | None
    f1: float | None
    true_positive: int
    false_positive: int
    false_negative: int
    support: int  # truly unanswerable queries


def abstention_scores(
    abstained: Mapping[str, bool], unanswerable: Mapping[str, bool]
) -> Abstention:
    """Abstaining is the positive class: precision = how often an abstention was right,
    recall = how many unanswerable questions were caught. Queries come from
    ``unanswerable``; a query missing from ``abstained`` counts as answered."""
    tp = fp = fn = 0
    for qid, truth in unanswerable.items():
        pred = abstained.get(qid, False)
        tp += int(pred and truth)
        fp += int(pred and not truth)
        fn += int(truth and not pred)
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    # No abstention at all (p None) catches nothing: F1 0, as recall is.
    f1 = None if r is None else (2 * p * r / (p + r) if p is not None and p + r else 0.0)
    return Abstention(p, r, f1, tp, fp, fn, tp + fn)


# --- slices and latency ---------------------------------------------------------------


def language_pair_slices(
    query_language: Mapping[str, str],
    doc_language: Callable[[str], str | None],
    qrels: Qrels,
) -> dict[str, str]:
    """Slice key ``"<question lang>→<gold passage lang>"`` per query, e.g. ``"es→fr"``.

    Gold documents in several languages give ``"<q>→mixed"``; a query without gold (an
    unanswerable one) gives ``"<q>→none"``.
    """
    keys: dict[str, str] = {}
    for qid, qlang in query_language.items():
        langs = {doc_language(d) or "?" for d, g in qrels.get(qid, {}).items() if g > 0}
        target = "none" if not langs else langs.pop() if len(langs) == 1 else "mixed"
        keys[qid] = f"{qlang}→{target}"
    return keys


def aggregate_by_slice(
    scores: Mapping[str, float], slice_of: Mapping[str, str]
) -> dict[str, tuple[float, int]]:
    """Mean score and query count per slice; queries without a slice go to ``"?"``.
    Includes ``"all"`` so the overall number is reported with the same code path."""
    groups: dict[str, list[float]] = {}
    for qid, value in scores.items():
        groups.setdefault(slice_of.get(qid, "?"), []).append(value)
    out = {key: (float(np.mean(vals)), len(vals)) for key, vals in sorted(groups.items())}
    out["all"] = (mean(scores), len(scores))
    return out


def latency_percentiles(
    seconds: Iterable[float], percentiles: Sequence[float] = (50, 95)
) -> dict[str, float]:
    """``{"p50": .., "p95": ..}`` in the input unit; NaN when nothing was timed."""
    values = np.asarray(list(seconds), dtype=np.float64)
    if values.size == 0:
        return {f"p{p:g}": math.nan for p in percentiles}
    return {f"p{p:g}": float(np.percentile(values, p)) for p in percentiles}
