"""Metric definitions: hand-computed cases, and agreement with ranx on random runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from akhbar.eval.metrics import (
    abstention_scores,
    aggregate_by_slice,
    answer_hit_at_k,
    average_precision_at_k,
    highlight_answer_hit,
    highlight_hit,
    hit_at_k,
    language_pair_slices,
    latency_percentiles,
    mean,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

RUN = {"q1": ["a", "b", "c", "d"], "q2": ["x", "y", "z"]}
QRELS = {"q1": {"b": 1, "d": 1, "e": 1}, "q2": {"x": 2, "z": 1}}


def test_hand_computed_binary() -> None:
    assert recall_at_k(RUN, QRELS, 2) == {"q1": pytest.approx(1 / 3), "q2": pytest.approx(0.5)}
    assert mrr_at_k(RUN, QRELS, 10) == {"q1": 0.5, "q2": 1.0}
    assert mrr_at_k(RUN, QRELS, 1) == {"q1": 0.0, "q2": 1.0}
    assert hit_at_k(RUN, QRELS, 1) == {"q1": 0.0, "q2": 1.0}
    # q1: relevant at ranks 2 and 4 of 3 relevant: (1/2 + 2/4) / 3
    assert average_precision_at_k(RUN, QRELS, 10)["q1"] == pytest.approx((0.5 + 0.5) / 3)


def test_hand_computed_ndcg_graded() -> None:
    # q2: gains 2, 0, 1 at ranks 1..3; ideal 2, 1.
    dcg = 2 + 1 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert ndcg_at_k(RUN, QRELS, 10)["q2"] == pytest.approx(dcg / idcg)
    dcg_exp = 3 + 1 / math.log2(4)
    idcg_exp = 3 + 1 / math.log2(3)
    got = ndcg_at_k(RUN, QRELS, 10, gain="exponential")["q2"]
    assert got == pytest.approx(dcg_exp / idcg_exp)


def test_missing_query_scores_zero_and_duplicates_count_once() -> None:
    qrels = {"q1": {"a": 1}, "q3": {"a": 1}}
    run = {"q1": ["a", "a", "b"]}
    assert recall_at_k(run, qrels, 5) == {"q1": 1.0, "q3": 0.0}
    assert average_precision_at_k({"q": ["a", "a", "b"]}, {"q": {"a": 1, "b": 1}}, 3)["q"] == 1.0
    assert mean({}) != mean({})  # NaN: an empty slice must not look like a zero score


def test_answer_hit() -> None:
    passages = {"q1": ["Le marché atteindra 4.800  milliards", "autre"], "q2": ["rien", "Dakhla"]}
    answers = {"q1": "4.800 milliards", "q2": ["dakhla", "Dajla"]}
    assert answer_hit_at_k(passages, answers, 1) == {"q1": 1.0, "q2": 0.0}
    assert answer_hit_at_k(passages, answers, 2) == {"q1": 1.0, "q2": 1.0}
    assert answer_hit_at_k({"q1": ["l’IA"]}, {"q1": "l'ia"}, 1) == {"q1": 1.0}


def test_abstention() -> None:
    truth = {"a": True, "b": True, "c": False, "d": False}
    pred = {"a": True, "b": False, "c": True, "d": False}
    s = abstention_scores(pred, truth)
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert (s.true_positive, s.false_positive, s.false_negative, s.support) == (1, 1, 1, 2)
    # Nothing abstained: precision has no data (n/a); nothing caught, so recall and F1 are 0.
    none = abstention_scores({}, truth)
    assert (none.precision, none.recall, none.f1) == (None, 0.0, 0.0)
    # No unanswerable question in the sample: recall and F1 have no data, not 0.
    answerable = {"c": False, "d": False}
    wrong = abstention_scores({"c": True}, answerable)
    assert (wrong.precision, wrong.recall, wrong.f1, wrong.support) == (0.0, None, None, 0)
    quiet = abstention_scores({}, answerable)
    assert (quiet.precision, quiet.recall, quiet.f1) == (None, None, None)


def test_slices_and_latency() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d1": 1, "d2": 1}, "q3": {}}
    langs = {"d1": "fr", "d2": "es"}
    keys = language_pair_slices({"q1": "es", "q2": "fr", "q3": "en"}, langs.get, qrels)
    assert keys == {"q1": "es→fr", "q2": "fr→mixed", "q3": "en→none"}
    agg = aggregate_by_slice({"q1": 1.0, "q2": 0.0, "q3": 0.5}, {"q1": "a", "q2": "a"})
    assert agg == {"?": (0.5, 1), "a": (0.5, 2), "all": (0.5, 3)}
    lat = latency_percentiles([1.0, 2.0, 3.0, 4.0, 100.0])
    assert lat["p50"] == 3.0 and 4.0 < lat["p95"] < 100.0
    assert math.isnan(latency_percentiles([])["p95"])


def _random_case(seed: int) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    rng = np.random.default_rng(seed)
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(400):
        pool = [f"d{i}" for i in rng.permutation(200)[:60]]
        n_ret = int(rng.integers(1, 50))
        # Distinct scores: ranx sorts by score, so ties would make the order ambiguous.
        scores = rng.permutation(n_ret).astype(float) + rng.random()
        run[f"q{q}"] = dict(zip(pool[:n_ret], scores.tolist(), strict=True))
        n_rel = int(rng.integers(1, 8))
        rel_docs = rng.choice(pool, size=n_rel, replace=False)
        qrels[f"q{q}"] = {str(d): int(rng.integers(1, 4)) for d in rel_docs}
    return run, qrels


RANX_METRICS = ["recall@5", "recall@20", "mrr@10", "ndcg@10", "map@20", "map@100", "hit_rate@3"]
SEEDS = [0, 1, 2]

# ranx's metrics are numba kernels; compiling them (numba's cache is empty in a fresh venv)
# took over a minute of the suite on two cores. With numba's JIT off the same ranx source
# runs as plain Python (numba's documented debugging switch, same semantics) in about a
# second, so the reference is still ranx's own definitions. In a child process: numba reads
# the switch once, at import, and must stay on for everything else in the session.
_RANX_CHILD = """
import json, sys
from ranx import Qrels, Run, evaluate
cases, metrics = json.load(sys.stdin)
out = [evaluate(Qrels(qrels), Run(run), metrics) for run, qrels in cases]
json.dump([{k: float(v) for k, v in r.items()} for r in out], sys.stdout)
"""


@pytest.fixture(scope="module")
def ranx_scores() -> list[dict[str, float]]:
    """ranx's figures for each seed's case, in one child process."""
    cases = [_random_case(seed) for seed in SEEDS]
    out = subprocess.run(
        [sys.executable, "-c", _RANX_CHILD],
        input=json.dumps([cases, RANX_METRICS]),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_ranx(seed: int, ranx_scores: list[dict[str, float]]) -> None:
    scored, qrels = _random_case(seed)
    ranked = {q: sorted(d, key=d.__getitem__, reverse=True) for q, d in scored.items()}
    ours = {
        "recall@5": mean(recall_at_k(ranked, qrels, 5)),
        "recall@20": mean(recall_at_k(ranked, qrels, 20)),
        "mrr@10": mean(mrr_at_k(ranked, qrels, 10)),
        "ndcg@10": mean(ndcg_at_k(ranked, qrels, 10)),
        "map@20": mean(average_precision_at_k(ranked, qrels, 20)),
        "map@100": mean(average_precision_at_k(ranked, qrels, 100)),
        "hit_rate@3": mean(hit_at_k(ranked, qrels, 3)),
    }
    theirs = ranx_scores[SEEDS.index(seed)]
    assert list(ours) == RANX_METRICS
    for name, value in ours.items():
        assert value == pytest.approx(theirs[name], abs=1e-6), name


def test_highlight_hit_counts_only_top_passages_holding_the_answer() -> None:
    passages = {
        "q1": ["A. The plant makes 500 MW. C."],
        "q2": ["A. The plant makes 500 MW. C."],
        "q3": ["nothing here"],
        "q4": [],
    }
    highlights = {"q1": ["The plant makes 500 MW."], "q2": ["A."], "q3": ["nothing"], "q4": []}
    answers = {"q1": "500 mw", "q2": "500 MW", "q3": "500 MW", "q4": "500 MW"}
    assert highlight_hit(passages, highlights, answers) == {"q1": 1.0, "q2": 0.0}


def test_answer_level_metrics_on_a_tiny_fixture() -> None:
    """answer@1, highlight@1 (conditional on the top passage) and highlight_answer@1 (over
    every answerable question) side by side on four questions."""
    passages = {
        "q1": ["Le site produira 500 MW. Il ouvre en 2027.", "autre"],
        "q2": ["Le site produira 500 MW. Il ouvre en 2027."],
        "q3": ["rien ici", "Le site produira 500\u00a0MW."],
        "q4": [],
    }
    highlights = {
        "q1": ["Le site produira 500 MW.", "autre"],
        "q2": ["Il ouvre en 2027."],
        "q3": ["rien ici", "Le site produira 500 MW."],
        "q4": [],
    }
    answers = {"q1": "500 MW", "q2": "500 mw", "q3": "500 MW", "q4": "500 MW"}
    assert answer_hit_at_k(passages, answers, 1) == {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.0}
    assert answer_hit_at_k(passages, answers, 2)["q3"] == 1.0  # no-break space folded
    assert highlight_hit(passages, highlights, answers) == {"q1": 1.0, "q2": 0.0}
    assert highlight_answer_hit(highlights, answers) == {
        "q1": 1.0,
        "q2": 0.0,
        "q3": 0.0,
        "q4": 0.0,
    }
