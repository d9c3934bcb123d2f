"""Fitting the answer model (index/answerability.py) by cross-validation on the eval set, and
scoring it on held-out folds: the highlight's sentence scorer and abstention's logistic
regression with its threshold.

Builds the eval set's index (the harder corpus, as ``akhbar eval`` does), asks every
question as the service does (hybrid, reranked, k = 10, unfiltered) and keeps its hits.
Then, in each of 5 stratified folds (10 fold draws):

- the highlight scorer is a logistic regression over HIGHLIGHT_FEATURES of every sentence
  of the training questions' passages that hold the answer string (first 5 hits), label
  "the sentence holds it"; scored as highlight@1 on the held-out questions whose first
  passage holds the answer (the metric ``akhbar eval`` reports);
- abstention is a logistic regression over ANSWER_FEATURES of the training questions'
  first hit (features read with that fold's highlight), label "answerable"; a question's
  score is the highest probability among its hits (what the service flags), and the
  threshold is the best F1 on the training folds.

Held-out figures pool every question's prediction by a model fitted without it; full-set
figures (fitted and scored on everything, what ships) are reported beside them, labelled
as such. The margin rule the service used before is scored the same way for comparison.

Run: ``python -m akhbar.eval.answer_study [--out DIR] [--write-model]``; --write-model
writes the full-set fit to index/data/answer_model.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.eval import abstention as ab
from akhbar.eval.dataset import DEFAULT_EVAL_SET, EvalItem, load_eval_set
from akhbar.eval.distractors import iter_distractors
from akhbar.eval.evalset import abstention_dict
from akhbar.eval.indexing import build_sample_index
from akhbar.eval.metrics import normalise_answer
from akhbar.index import answerability as am
from akhbar.index.answers import Hit, scored_hit, sentence_cosines, top_hits
from akhbar.index.second_view import SecondView
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings

K = 10
FOLDS = 5
DRAWS = range(10)
HIGHLIGHT_L2 = 10.0
ANSWER_L2 = 1.0
MODEL_PATH = Path(__file__).parents[1] / "index" / am.SHIPPED


@dataclass
class Asked:
    """One question as the service answered it."""

    item: EvalItem
    cues: am.Cues
    vector: np.ndarray
    hits: list[Hit]


def collect(settings: Settings, items: Sequence[EvalItem]) -> list[Asked]:
    from akhbar.service.qa import load_encoder

    encoder = load_encoder(settings)
    out: list[Asked] = []
    with tempfile.TemporaryDirectory(prefix="akhbar-answer-study-") as tmp:
        reader, _ = build_sample_index(settings, encoder, Path(tmp), extra=iter_distractors())
        # Reranked as the service reranks, with the second view where it runs one.
        view = SecondView.open(embeddings_path(settings)) if settings.second_view else None
        try:
            for item in items:
                q = item.question
                language = detect_language(q)
                vec = encoder.encode_queries([q])[0]
                second = None if view is None else view.query(q, language)
                cand = reader.search(vec, q, K)
                hits = top_hits(reader, cand, q, language, vec, K, second=second)
                out.append(Asked(item, am.question_cues(q, language), vec, hits))
        finally:
            reader.close()
            if view is not None:
                view.close()
    return out


def _holds(answer: str, text: str) -> bool:
    needle = normalise_answer(answer)
    return bool(needle) and needle in normalise_answer(text)


def _linear(model: ab.Logistic, names: tuple[str, ...]) -> am.Linear:
    return am.Linear(
        names,
        tuple(map(float, model.mean)),
        tuple(map(float, model.scale)),
        tuple(map(float, model.weights)),
        float(model.bias),
    )


def fit_highlight(asked: Sequence[Asked]) -> am.Linear:
    xs, ys = [], []
    for a in asked:
        if not a.item.answerable:
            continue
        for h in a.hits[:5]:
            chunk = h.passage.chunk
            if not _holds(a.item.answer, chunk.text):
                continue
            sentences = chunk.sentences or ((0, len(chunk.text)),)
            cos = sentence_cosines(h.passage, a.vector)
            xs.append(am.sentence_features(chunk.text, sentences, chunk.language, cos, a.cues))
            ys += [_holds(a.item.answer, chunk.text[s:e]) for s, e in sentences]
    fitted = ab.fit_logistic(np.vstack(xs), np.array(ys), HIGHLIGHT_L2)
    return _linear(fitted, am.HIGHLIGHT_FEATURES)


def rescore(a: Asked, model: am.AnswerModel, k: int = K) -> list[Hit]:
    """The question's hits with ``model``'s highlight and probability (same ranking)."""
    return [
        scored_hit(
            h.passage,
            a.cues,
            a.vector,
            model,
            score=h.score,
            dense=h.dense,
            lexical=h.lexical,
            margin=h.margin,
        )
        for h in a.hits[:k]
    ]


def highlight_hits(asked: Sequence[Asked], model: am.AnswerModel) -> list[bool]:
    """highlight@1 per question whose first passage holds the answer (as ``akhbar eval``)."""
    out = []
    for a in asked:
        if (
            not a.item.answerable
            or not a.hits
            or not _holds(a.item.answer, a.hits[0].passage.chunk.text)
        ):
            continue
        h = rescore(a, model, 1)[0]
        out.append(_holds(a.item.answer, h.passage.chunk.text[slice(*h.highlight)]))
    return out


def first_hit_features(asked: Sequence[Asked], model: am.AnswerModel) -> np.ndarray:
    rows = []
    for a in asked:
        h = rescore(a, model, 1)[0]
        cos = sentence_cosines(h.passage, a.vector)
        rows.append(
            am.answer_features(
                cues=a.cues,
                title=h.passage.title,
                text=h.passage.chunk.text,
                sentences=h.passage.chunk.sentences,
                language=h.passage.chunk.language,
                highlight=h.highlight,
                dense=h.dense,
                margin=h.margin,
                score=h.score,
                lexical=h.lexical,
                best_sentence=float(cos.max()) if cos is not None and len(cos) else h.dense,
            )
        )
    return np.array(rows)


def fit(asked: Sequence[Asked], source: str) -> am.AnswerModel:
    """Highlight, then abstention read with that highlight, then the threshold."""
    placeholder = am.shipped_model()
    hl = fit_highlight(asked)
    with_hl = am.AnswerModel(hl, placeholder.answers, 0.5)
    x = first_hit_features(asked, with_hl)
    y = np.array([a.item.answerable for a in asked])
    answers = _linear(ab.fit_logistic(x, y, ANSWER_L2), am.ANSWER_FEATURES)
    model = am.AnswerModel(hl, answers, 0.5, source)
    scores = question_scores(asked, model)
    threshold = ab.best_threshold(scores, ~y)
    return am.AnswerModel(hl, answers, threshold, source)


def question_scores(asked: Sequence[Asked], model: am.AnswerModel, k: int = K) -> np.ndarray:
    """The highest answer probability among each question's first ``k`` hits."""
    return np.array([max((h.confidence for h in rescore(a, model, k)), default=0.0) for a in asked])


def held_out(asked: Sequence[Asked], seed: int, k: int = K) -> dict[str, Any]:
    y_un = np.array([not a.item.answerable for a in asked])
    fold = ab.stratified_folds(y_un, FOLDS, seed)
    abstained = np.zeros(len(asked), bool)
    margin_abstained = np.zeros(len(asked), bool)
    hl: list[bool] = []
    margins = np.array([max((h.margin for h in a.hits[:k]), default=-1.0) for a in asked])
    for f in range(FOLDS):
        train = [a for a, g in zip(asked, fold, strict=True) if g != f]
        test = [a for a, g in zip(asked, fold, strict=True) if g == f]
        model = fit(train, f"fold {f}")
        abstained[fold == f] = question_scores(test, model, k) < model.threshold
        hl += highlight_hits(test, model)
        t = ab.best_threshold(margins[fold != f], y_un[fold != f])
        margin_abstained[fold == f] = margins[fold == f] < t
    return {
        "abstention": ab.abstention(abstained, y_un),
        "margin_rule": ab.abstention(margin_abstained, y_un),
        "highlight@1": float(np.mean(hl)),
        "highlight_n": len(hl),
    }


def study(asked: Sequence[Asked]) -> tuple[dict[str, Any], am.AnswerModel]:
    draws = [held_out(asked, seed) for seed in DRAWS]
    draws5 = [held_out(asked, seed, k=5) for seed in DRAWS[:3]]
    full = fit(asked, f"eval set (harder corpus), {len(asked)} questions, full-set fit")
    y_un = np.array([not a.item.answerable for a in asked])
    full_abst = ab.abstention(question_scores(asked, full) < full.threshold, y_un)
    before = am.AnswerModel(_before_highlight(), full.answers, full.threshold)

    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "sd": float(np.std(values))}

    result = {
        "questions": len(asked),
        "unanswerable": int(y_un.sum()),
        "folds": FOLDS,
        "draws": len(DRAWS),
        "held_out": {
            "abstention_f1": stats([d["abstention"].f1 or 0.0 for d in draws]),
            "abstention_first_draw": abstention_dict(draws[0]["abstention"]),
            "abstention_f1_k5": stats([d["abstention"].f1 or 0.0 for d in draws5]),
            "margin_rule_f1": stats([d["margin_rule"].f1 or 0.0 for d in draws]),
            "highlight@1": stats([d["highlight@1"] for d in draws]),
            "highlight_n": draws[0]["highlight_n"],
        },
        "full_set": {
            "abstention": abstention_dict(full_abst),
            "threshold": full.threshold,
            "highlight@1": float(np.mean(highlight_hits(asked, full))),
            "highlight@1_cosine_only": float(np.mean(highlight_hits(asked, before))),
        },
        "model": full.to_dict(),
    }
    return result, full


def _before_highlight() -> am.Linear:
    """The sentence's own cosine alone, for comparison."""
    n = len(am.HIGHLIGHT_FEATURES)
    weights = tuple(1.0 if i == 0 else 0.0 for i in range(n))
    return am.Linear(am.HIGHLIGHT_FEATURES, (0.0,) * n, (1.0,) * n, weights, 0.0)


def markdown(r: dict[str, Any]) -> str:
    h, f = r["held_out"], r["full_set"]
    a0 = h["abstention_first_draw"]
    fa = f["abstention"]
    return "\n".join(
        [
            "# Answer model study (eval set, harder corpus, served hybrid ranking)",
            "",
            f"{r['questions']} questions, {r['unanswerable']} unanswerable. Held out: "
            f"{r['folds']} stratified folds, mean ± sd over {r['draws']} fold draws; every "
            "question judged by a model (highlight, abstention, threshold) fitted without it "
            "(eval/answer_study.py).",
            "",
            "| figure | held out | full set (fit and scored on all) |",
            "|---|---|---|",
            f"| abstention F1, answer model (k = 10) | {h['abstention_f1']['mean']:.3f} ± "
            f"{h['abstention_f1']['sd']:.3f} | {fa['f1']:.3f} (P {fa['precision']:.3f}, "
            f"R {fa['recall']:.3f}) |",
            f"| abstention F1, answer model (k = 5) | {h['abstention_f1_k5']['mean']:.3f} ± "
            f"{h['abstention_f1_k5']['sd']:.3f} (3 draws) | |",
            f"| abstention F1, margin rule (before) | {h['margin_rule_f1']['mean']:.3f} ± "
            f"{h['margin_rule_f1']['sd']:.3f} | |",
            f"| highlight@1 (n = {h['highlight_n']}) | {h['highlight@1']['mean']:.3f} ± "
            f"{h['highlight@1']['sd']:.3f} | {f['highlight@1']:.3f} (cosine alone "
            f"{f['highlight@1_cosine_only']:.3f}) |",
            "",
            f"First draw, pooled held-out abstention: P {a0['precision']:.3f}, "
            f"R {a0['recall']:.3f}, F1 {a0['f1']:.3f} (tp {a0['tp']}, fp {a0['fp']}, "
            f"fn {a0['fn']}).",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--write-model", action="store_true")
    args = parser.parse_args(argv)
    asked = collect(Settings(), load_eval_set(DEFAULT_EVAL_SET))
    result, model = study(asked)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "answer-study.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "answer-study.md").write_text(markdown(result))
    if args.write_model:
        MODEL_PATH.write_text(json.dumps(model.to_dict(), indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
