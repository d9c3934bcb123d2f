"""Offline study: can features beyond the one margin tell unanswerable questions apart?

Builds the eval set's index (the harder corpus, as ``akhbar eval`` does), asks every
question as the service does (hybrid, reranked, k = 10, unfiltered), reads six features
per question from what comes back, and compares on held-out folds:

- the served rule: the best margin (top cosine − the question's 10th-best) under a
  threshold;
- a logistic regression over the six features, with a threshold on its probability;
- nested cross-validation: in each outer fold the feature set (one of ``FEATURE_SETS``) is
  chosen by cross-validation on the other folds, so choosing features costs no optimism.

Run: ``python -m akhbar.eval.abstention_study [--out DIR]`` (AKHBAR_HOME's model and
embedding cache are used; nothing is written to its store or index). Writes
``abstention-study.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.eval import abstention as ab
from akhbar.eval.dataset import DEFAULT_EVAL_SET, load_eval_set
from akhbar.eval.distractors import iter_distractors
from akhbar.eval.indexing import build_sample_index
from akhbar.index.analysis import analyze_cached
from akhbar.index.answers import Hit, top_hits
from akhbar.index.base import Candidates
from akhbar.index.second_view import SecondView
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings

FEATURES = ("margin", "margin5", "top", "article_gap", "coverage3", "same_language")
FEATURE_SETS: tuple[tuple[str, ...], ...] = (
    ("margin",),
    ("margin5",),
    ("margin", "top"),
    ("margin", "margin5", "top"),
    ("margin", "margin5", "top", "article_gap"),
    FEATURES,
)
K = 10


def features(
    question: str, language: str, candidates: Candidates, hits: Sequence[Hit]
) -> list[float]:
    """The six features of one question, from its unfiltered candidates and top hits."""
    dense = np.sort(np.asarray(candidates.dense, np.float64))[::-1]
    top = float(dense[0])
    best: dict[str, float] = {}
    for h in hits:
        a = h.passage.chunk.article_id
        best[a] = max(best.get(a, -1.0), h.dense)
    ranked = sorted(best.values(), reverse=True)
    coverage = 0.0
    for h in hits[:3]:
        lang = h.passage.chunk.language
        q_terms = set(analyze_cached(question, lang))
        p_terms = set(analyze_cached(h.passage.chunk.text, lang))
        coverage = max(coverage, len(q_terms & p_terms) / max(1, len(q_terms)))
    return [
        max(h.margin for h in hits),
        top - float(dense[min(4, len(dense) - 1)]),
        top,
        ranked[0] - ranked[1] if len(ranked) > 1 else 0.0,
        coverage,
        float(bool(hits) and hits[0].passage.chunk.language == language),
    ]


def collect(settings: Settings) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from akhbar.service.qa import load_encoder

    items = load_eval_set(DEFAULT_EVAL_SET)
    encoder = load_encoder(settings)
    rows: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="akhbar-abstention-study-") as tmp:
        reader, _ = build_sample_index(settings, encoder, Path(tmp), extra=iter_distractors())
        second = SecondView.open(embeddings_path(settings)) if settings.second_view else None
        try:
            for item in items:
                q = item.question
                language = detect_language(q)
                vec = encoder.encode_queries([q])[0]
                candidates = reader.search(vec, q, K)
                view = None if second is None else second.query(q, language)
                hits = top_hits(reader, candidates, q, language, vec, K, second=view)
                rows.append(features(q, language, candidates, hits))
        finally:
            reader.close()
            if second is not None:
                second.close()
    y = np.array([not i.answerable for i in items], bool)
    return np.array(rows, np.float64), y, [i.id for i in items]


def _fitter(columns: Sequence[str]) -> ab.Fitter:
    idx = [FEATURES.index(c) for c in columns]
    if len(idx) == 1:
        return lambda _x, _y: lambda x: np.asarray(x)[:, idx[0]]

    def fit(x: np.ndarray, answerable: np.ndarray) -> ab.Scorer:
        model = ab.fit_logistic(np.asarray(x)[:, idx], answerable)
        return lambda z: model(np.asarray(z)[:, idx])

    return fit


def nested_f1(x: np.ndarray, y: np.ndarray, seed: int, k: int = 5) -> tuple[float, list[str]]:
    """Held-out F1 with the feature set chosen inside each outer training part."""
    fold = ab.stratified_folds(y, k, seed)
    abstained = np.zeros(len(y), bool)
    chosen: list[str] = []
    for f in range(k):
        train, test = fold != f, fold == f
        scores = [
            (
                ab.cross_validate(x[train], y[train], _fitter(cols), k=k, seed=seed).abstention.f1
                or 0.0,
                cols,
            )
            for cols in FEATURE_SETS
        ]
        cols = max(scores, key=lambda s: s[0])[1]
        chosen.append("+".join(cols))
        score = _fitter(cols)(x[train], ~y[train])
        t = ab.best_threshold(score(x[train]), y[train])
        abstained[test] = score(x[test]) < t
    return ab.abstention(abstained, y).f1 or 0.0, chosen


def study(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    rules = {}
    for cols in FEATURE_SETS:
        mean, sd = ab.repeated_f1(x, y, _fitter(cols))
        rules["+".join(cols)] = {"f1_mean": mean, "f1_sd": sd}
    nested = [nested_f1(x, y, seed=100 + s) for s in range(5)]
    return {
        "questions": len(y),
        "unanswerable": int(y.sum()),
        "features": list(FEATURES),
        "held_out_f1_by_rule": rules,
        "nested_f1": [f for f, _ in nested],
        "nested_f1_mean": float(np.mean([f for f, _ in nested])),
        "nested_chosen": [c for _, c in nested],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Abstention study (eval set, harder corpus, served hybrid ranking)",
        "",
        f"{result['questions']} questions, {result['unanswerable']} unanswerable. Held-out "
        "F1: 5 stratified folds, mean ± sd over 10 fold draws; one feature is thresholded, "
        "several go through a logistic regression (eval/abstention.py).",
        "",
        "| rule | held-out F1 | sd |",
        "|---|---|---|",
    ]
    for name, r in result["held_out_f1_by_rule"].items():
        lines.append(f"| {name} | {r['f1_mean']:.3f} | {r['f1_sd']:.3f} |")
    lines += [
        "",
        f"Nested (feature set chosen inside each fold): F1 {result['nested_f1_mean']:.3f} "
        f"over 5 draws ({', '.join(f'{f:.3f}' for f in result['nested_f1'])}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    x, y, _ = collect(Settings())
    result = study(x, y)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "abstention-study.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "abstention-study.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
