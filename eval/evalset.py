"""Scoring the hand-written eval set over the bundled sample: retrieval, answer strings,
abstention and latency, per retriever and per question/passage language slice."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.eval import abstention as ab
from akhbar.eval import metrics as m
from akhbar.eval.dataset import EvalItem, qrels_from_items
from akhbar.eval.retrieval import MODES, ModeRun, Progress, Query, encode_one_by_one, retrieve
from akhbar.index.answerability import shipped_model
from akhbar.index.base import IndexReader
from akhbar.index.encoder import Encoder
from akhbar.index.second_view import SecondView

K = 10
RETRIEVAL_METRICS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "answer_hit@1",
    "answer_hit@5",
    "highlight@1",
    "highlight_answer@1",
)


def per_query_metrics(
    run: ModeRun, qrels: m.Qrels, answers: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """metric -> {qid: score} over the answerable questions."""
    return {
        "recall@1": m.recall_at_k(run.docs, qrels, 1),
        "recall@5": m.recall_at_k(run.docs, qrels, 5),
        "recall@10": m.recall_at_k(run.docs, qrels, 10),
        "mrr@10": m.mrr_at_k(run.docs, qrels, 10),
        "ndcg@10": m.ndcg_at_k(run.docs, qrels, 10),
        "answer_hit@1": m.answer_hit_at_k(run.passages, answers, 1),
        "answer_hit@5": m.answer_hit_at_k(run.passages, answers, 5),
        "highlight@1": m.highlight_hit(run.passages, run.highlights, answers),
        "highlight_answer@1": m.highlight_answer_hit(run.highlights, answers),
    }


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def abstention_at(
    top_score: Mapping[str, float], unanswerable: Mapping[str, bool], threshold: float
) -> m.Abstention:
    # The service abstains when nothing comes back or the best score is under the threshold.
    abstained = {q: top_score.get(q, -math.inf) < threshold for q in unanswerable}
    return m.abstention_scores(abstained, unanswerable)


def best_threshold(
    top_score: Mapping[str, float], unanswerable: Mapping[str, bool]
) -> tuple[float, m.Abstention]:
    """The threshold with the highest abstention F1 on this set (ties: the lowest, which
    abstains least). Candidates are the observed top scores, plus one above them all."""
    finite = sorted({s for s in top_score.values() if math.isfinite(s)})
    candidates = [*finite, (finite[-1] + 1e-6) if finite else 0.0]
    best_t, best = candidates[0], abstention_at(top_score, unanswerable, candidates[0])
    for t in candidates[1:]:
        scores = abstention_at(top_score, unanswerable, t)
        if (scores.f1 or 0.0) > (best.f1 or 0.0) + 1e-12:
            best_t, best = t, scores
    return best_t, best


def abstention_dict(a: m.Abstention) -> dict[str, float | int | None]:
    return {
        "precision": a.precision,
        "recall": a.recall,
        "f1": a.f1,
        "tp": a.true_positive,
        "fp": a.false_positive,
        "fn": a.false_negative,
        "support": a.support,
    }


# Held-out abstention: stratified folds, and fold draws repeated to show the spread.
FOLDS = 5
FOLD_SEEDS = range(10)


def held_out_abstention(
    top_score: Mapping[str, float], unanswerable: Mapping[str, bool]
) -> dict[str, Any] | None:
    """The service's rule (best answer probability under a threshold) with the threshold
    refitted by cross-validation: each question judged by a threshold chosen on the other
    folds. The model's coefficients are the shipped ones, fitted on this set: the figure
    with the coefficients refitted per fold too is eval/answer_study.py's.
    None when the set has too few questions of a class for the folds."""
    qids = list(unanswerable)
    y = np.array([unanswerable[q] for q in qids], bool)
    if min(int(y.sum()), int((~y).sum())) < FOLDS:
        return None
    # Nothing returned reads as the lowest score of all: abstain.
    x = np.array([top_score.get(q, -math.inf) for q in qids], np.float64)
    x[~np.isfinite(x)] = -1.0
    held = ab.cross_validate(x, y, ab.one_feature(), k=FOLDS, seed=0)
    mean, sd = ab.repeated_f1(x, y, ab.one_feature(), k=FOLDS, seeds=FOLD_SEEDS)
    return {
        "folds": FOLDS,
        **abstention_dict(held.abstention),
        "fold_thresholds": held.thresholds,
        "fold_f1": held.per_fold_f1,
        "f1_mean_over_draws": mean,
        "f1_sd_over_draws": sd,
        "draws": len(FOLD_SEEDS),
    }


def abstained_above_answer(run: ModeRun, answers: Mapping[str, str], threshold: float) -> list[str]:
    """Answerable questions the rule abstains on although the first passage's highlighted
    sentence holds the answer: what a reader would see as "nothing answers" over an
    answer (the service shows no highlight then, but the passage is still first)."""
    out = []
    for qid, answer in answers.items():
        marked = run.highlights.get(qid, ())[:1]
        holds = bool(marked) and m.normalise_answer(answer) in m.normalise_answer(marked[0])
        if holds and run.top_score.get(qid, -math.inf) < threshold:
            out.append(qid)
    return out


def score_mode(
    run: ModeRun,
    items: Sequence[EvalItem],
    slice_of: Mapping[str, str],
    encode_s: Mapping[str, float],
    threshold: float,
) -> dict[str, Any]:
    qrels = qrels_from_items(items)
    answers = {i.id: i.answer for i in items if i.answerable}
    per_q = per_query_metrics(run, qrels, answers)
    slices: dict[str, dict[str, Any]] = {}
    for name, scores in per_q.items():
        for key, (value, n) in m.aggregate_by_slice(scores, slice_of).items():
            slices.setdefault(key, {"n": n})[name] = _nan_to_none(value)
            if name == "highlight@1":  # counted over fewer questions: see metrics
                slices[key]["highlight_n"] = n
    overall = slices.pop("all")

    unanswerable = {i.id: not i.answerable for i in items}
    by_lang: dict[str, Any] = {}
    for lang in sorted({i.language for i in items}):
        subset = {q: u for q, u in unanswerable.items() if slice_of[q].startswith(f"{lang}→")}
        by_lang[lang] = abstention_dict(abstention_at(run.top_score, subset, threshold))
    t_best, a_best = best_threshold(run.top_score, unanswerable)
    latency = [encode_s[q] + run.search_s[q] for q in run.search_s]
    return {
        "overall": overall,
        "slices": slices,
        "abstention": {
            "threshold": threshold,
            **abstention_dict(abstention_at(run.top_score, unanswerable, threshold)),
            "by_question_language": by_lang,
            "best_threshold": t_best,
            "best": abstention_dict(a_best),
            "held_out": held_out_abstention(run.top_score, unanswerable),
            "abstained_above_answer": abstained_above_answer(run, answers, threshold),
        },
        "latency_ms": {k: v * 1000 for k, v in m.latency_percentiles(latency).items()},
        "search_ms": {k: v * 1000 for k, v in m.latency_percentiles(run.search_s.values()).items()},
    }


def evaluate_eval_set(
    items: Sequence[EvalItem],
    searcher: IndexReader,
    encoder: Encoder,
    article_language: Mapping[str, str],
    *,
    progress: Progress | None = None,
    second: SecondView | None = None,
) -> dict[str, Any]:
    """Every question encoded once (timed alone), then searched in all three modes
    (the hybrid one reranked as the service does, with ``second`` if it runs one)."""
    queries = [Query(i.id, i.question, detect_language(i.question)) for i in items]
    vectors, encode_s = encode_one_by_one(encoder, [q.text for q in queries], progress=progress)
    runs = retrieve(searcher, queries, vectors, k=K, modes=MODES, progress=progress, second=second)
    slice_of = m.language_pair_slices(
        {i.id: i.language for i in items}, article_language.get, qrels_from_items(items)
    )
    encode_by_q = {q.id: float(s) for q, s in zip(queries, encode_s, strict=True)}
    # The verdict's threshold: the shipped answer model's, on its probability.
    threshold = shipped_model().threshold
    detected_ok = sum(q.language == i.language for q, i in zip(queries, items, strict=True))
    return {
        "name": "eval-set",
        "questions": len(items),
        "answerable": sum(i.answerable for i in items),
        "unanswerable": sum(not i.answerable for i in items),
        "language_detection_accuracy": detected_ok / len(items) if items else None,
        "slice_sizes": dict(sorted(Counter(slice_of.values()).items())),
        "encode_ms": {k: v * 1000 for k, v in m.latency_percentiles(encode_s.tolist()).items()},
        "manifest": searcher.manifest,
        "retrievers": {
            mode: score_mode(run, items, slice_of, encode_by_q, threshold)
            for mode, run in runs.items()
        },
    }
