"""Abstention: cross-validated calibration (synthetic data), the verdict read on the
unfiltered ranking (real engine), and the page/CLI never saying "nothing answers" above a
passage they mark as the answer."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from akhbar.corpus.models import Chunk
from akhbar.eval import abstention as ab
from akhbar.eval import abstention_study
from akhbar.index.answers import Hit, verdict
from akhbar.index.base import AnswerParams, Candidates, Filters, Passage
from akhbar.service import cli as cli_module
from akhbar.service import qa as service_qa
from akhbar.service.cli import app
from akhbar.service.schemas import ask_response

# --- calibration on synthetic data ---------------------------------------------------------


def _synthetic(n_pos: int = 40, n_neg: int = 120, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Margins: unanswerable questions centred lower than answerable ones, overlapping."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0.01, 0.01, n_pos), rng.normal(0.05, 0.01, n_neg)])
    y = np.concatenate([np.ones(n_pos, bool), np.zeros(n_neg, bool)])
    return x, y


def test_folds_are_stratified_and_cover_every_question_once() -> None:
    _, y = _synthetic()
    fold = ab.stratified_folds(y, 5, seed=3)
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3, 4]
    for f in range(5):
        assert (y[fold == f]).sum() == 8  # 40 unanswerable dealt evenly
    assert np.array_equal(fold, ab.stratified_folds(y, 5, seed=3))  # repeatable
    with pytest.raises(ValueError, match="at least 5"):
        ab.stratified_folds(np.array([True, True, False, False, False, False]), 5)


def test_best_threshold_maximises_f1_and_sits_between_scores() -> None:
    scores = np.array([0.0, 0.1, 0.2, 0.3])
    unanswerable = np.array([True, True, False, False])
    t = ab.best_threshold(scores, unanswerable)
    assert 0.1 < t < 0.2  # abstains on exactly the two low ones
    assert ab.abstention(scores < t, unanswerable).f1 == 1.0


def test_cross_validation_predicts_each_question_with_a_rule_fitted_without_it() -> None:
    x, y = _synthetic()
    held = ab.cross_validate(x, y, ab.one_feature(), k=5, seed=0)
    assert held.abstention.support == int(y.sum())
    assert held.abstention.f1 is not None and held.abstention.f1 > 0.8
    # Re-derive fold 0 by hand: its threshold comes from the other folds only.
    fold = ab.stratified_folds(y, 5, seed=0)
    t0 = ab.best_threshold(x[fold != 0], y[fold != 0])
    assert t0 == held.thresholds[0]
    assert np.array_equal(held.abstained[fold == 0], x[fold == 0] < t0)


def test_logistic_regression_uses_a_second_feature_when_it_carries_the_signal() -> None:
    # Unanswerable questions are told apart by the difference of two features, not by
    # either alone: one feature's threshold cannot do it, the fitted combination can.
    rng = np.random.default_rng(7)
    n = 200
    base = rng.normal(0.5, 0.2, n)
    y = rng.random(n) < 0.3
    x = np.column_stack([base + np.where(y, 0.0, 0.1), base + rng.normal(0, 0.01, n)])
    single = ab.cross_validate(x, y, ab.one_feature(0), k=5).abstention.f1 or 0.0
    fitted = ab.cross_validate(x, y, ab.logistic(l2=0.1), k=5).abstention.f1 or 0.0
    assert fitted > 0.9 > single
    model = ab.fit_logistic(x, ~y, l2=0.1)
    w, b = model.raw()
    z = x @ w + b
    assert np.allclose(1 / (1 + np.exp(-z)), model(x))
    assert w[0] > 0 > w[1]  # more above the second feature = more likely answerable


def _passage(article: str, text: str, language: str) -> Passage:
    chunk = Chunk(f"{article}:0", article, 0, 0, len(text), text, language)
    return Passage(chunk, article, None, None, None, "article")


def test_study_features_read_the_unfiltered_candidates_and_hits() -> None:
    dense = np.array([0.90, 0.88, 0.86, 0.85, 0.84, 0.80, 0.79, 0.78, 0.77, 0.76], np.float32)
    cands = Candidates(np.arange(10), dense, dense, np.zeros(10, np.float32), 0.76)
    hits = [
        Hit(_passage("a", "Le barrage produit 500 MW.", "fr"), 0.9, 0.90, 1.0, (0, 26), 0.14, True),
        Hit(
            _passage("a", "Autre phrase du même article.", "fr"),
            0.88,
            0.88,
            0.0,
            (0, 10),
            0.12,
            True,
        ),
        Hit(
            _passage("b", "El embalse está en Marruecos.", "es"),
            0.86,
            0.86,
            0.0,
            (0, 10),
            0.10,
            True,
        ),
    ]
    f = dict(
        zip(
            abstention_study.FEATURES,
            abstention_study.features("Quelle puissance produit le barrage ?", "fr", cands, hits),
            strict=True,
        )
    )
    assert f["margin"] == pytest.approx(0.14)
    assert f["margin5"] == pytest.approx(0.90 - 0.84)
    assert f["top"] == pytest.approx(0.90)
    assert f["article_gap"] == pytest.approx(0.90 - 0.86)  # best of another article
    assert 0 < f["coverage3"] <= 1  # "barrage" and "produit" are in the first passage
    assert f["same_language"] == 1.0


def test_study_compares_rules_on_held_out_folds() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(150) < 0.3
    x = rng.normal(0, 1, (150, len(abstention_study.FEATURES)))
    x[:, 0] += np.where(y, -1.5, 0.0)  # the margin carries the signal
    result = abstention_study.study(x, y)
    assert set(result["held_out_f1_by_rule"]) == {
        "+".join(c) for c in abstention_study.FEATURE_SETS
    }
    assert result["held_out_f1_by_rule"]["margin"]["f1_mean"] > 0.6
    assert len(result["nested_f1"]) == 5 and 0 <= result["nested_f1_mean"] <= 1
    assert "held-out F1" in abstention_study.markdown(result)


# --- the verdict ---------------------------------------------------------------------------


def _hit(margin: float, threshold: float) -> Hit:
    chunk = Chunk(id="c", article_id="a", ordinal=0, start=0, end=6, text="Texte.", language="fr")
    passage = Passage(chunk, "t", None, None, None, "article")
    return Hit(passage, 0.9, 0.9, 0.0, (0, 6), margin, margin >= threshold)


def test_verdict_reads_the_unfiltered_hits_and_never_denies_a_shown_answer() -> None:
    params = AnswerParams(abstain_threshold=0.03)
    answering, weak = _hit(0.05, 0.03), _hit(0.01, 0.03)
    # The filters hid the answering passage: the corpus still knows.
    assert verdict([answering, weak], [weak], params)
    # Nothing stands out unfiltered: abstain, whatever the filters leave.
    assert not verdict([weak], [weak], params)
    assert not verdict([], [], params)
    # A shown passage flagged as answering is never under "nothing answers".
    assert verdict([weak], [answering], params)


QUESTIONS = [
    "Quelle capacité pour le data center de Dakhla ?",
    "What is the Moroccan AI strategy called?",
    "¿Cuántos empleos suprimirá Hewlett-Packard en Francia de aquí a 2014?",
    "Quelle est la meilleure recette de gâteau au chocolat sans gluten ?",
    "Who won the 2022 FIFA World Cup final?",
]
FILTERS = [
    Filters(since=date(2025, 11, 30)),
    Filters(until=date(2012, 6, 30)),
    Filters(languages=("es",)),
    Filters(since=date(2030, 1, 1)),  # nothing left to show
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_verdict_does_not_change_with_filters(engine, question: str) -> None:
    unfiltered = engine.ask(question, 5)
    for filters in FILTERS:
        filtered = engine.ask(question, 5, filters)
        assert filtered.answerable == unfiltered.answerable, filters
        # What is shown and what it says agree: a passage put forward as the answer is
        # never under "nothing answers".
        if any(h.answers for h in filtered.hits):
            assert filtered.answerable


def test_abstention_still_tells_on_topic_from_off_topic(engine) -> None:
    assert engine.ask(QUESTIONS[0], 3).answerable
    assert not engine.ask(QUESTIONS[3], 3).answerable


# --- the CLI ------------------------------------------------------------------------------

MARK = "\x1b[1;33m"  # rich's "bold yellow": the CLI's highlight


@pytest.fixture
def ask_cli(sample_settings, encoder, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(service_qa, "load_encoder", lambda _s: encoder)
    monkeypatch.setenv("AKHBAR_HOME", str(sample_settings.home))
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")

    def run(*args: str) -> str:
        out = io.StringIO()
        term = Console(file=out, force_terminal=True, color_system="standard", width=300)
        monkeypatch.setattr(cli_module, "console", term)
        result = CliRunner().invoke(app, ["ask", *args])
        assert result.exit_code == 0, result.output
        return out.getvalue()

    return run


def test_cli_marks_no_sentence_under_not_answerable(ask_cli) -> None:
    off = ask_cli(QUESTIONS[3], "-k", "3")
    assert "seems to answer" in off
    assert MARK not in off
    on = ask_cli(QUESTIONS[0], "-k", "3")
    assert "seems to answer" not in on
    assert MARK in on and "500 MW" in on


def test_api_flags_agree_with_the_verdict(engine) -> None:
    for question in QUESTIONS:
        for filters in (Filters(), *FILTERS):
            res = ask_response(engine.ask(question, 5, filters))
            if not res.answerable:
                assert not any(p.answers for p in res.passages)
