"""Calibrating abstention by cross-validation, and scoring it on held-out folds.

A *rule* turns a question's evidence (a row of features read from the unfiltered ranking,
see ``index/answers.py``) into one score and abstains below a threshold. Two families are
fitted here: one feature with a threshold (the service's margin rule), and a logistic
regression over several features with a threshold on its probability. Either way, the
threshold is the one with the best abstention F1 on the training folds; the figures
reported are those of the held-out folds, pooled (each question predicted once, by the
rule fitted without it). Folds are stratified, so each holds its share of unanswerable
questions, and seeded, so a run is repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from akhbar.eval import metrics as m

# scores (n,), unanswerable (n,) -> threshold: abstain where score < threshold
Scorer = Callable[[np.ndarray], np.ndarray]
Fitter = Callable[[np.ndarray, np.ndarray], Scorer]


def best_threshold(scores: np.ndarray, unanswerable: np.ndarray) -> float:
    """The threshold with the highest abstention F1 (abstain where score < threshold);
    ties go to the lowest, which abstains least. Candidates sit halfway between adjacent
    observed scores, so a held-out score equal to a training one is decided the same way
    whichever side of the tie it lands."""
    s = np.unique(np.asarray(scores, np.float64))
    if s.size == 0:
        return 0.0
    candidates = np.concatenate([[s[0] - 1.0], (s[:-1] + s[1:]) / 2, [s[-1] + 1.0]])
    best_t, best_f1 = float(candidates[0]), -1.0
    for t in candidates:
        f1 = f1_score(scores < t, unanswerable)
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t


def f1_score(abstained: np.ndarray, unanswerable: np.ndarray) -> float:
    a = abstention(abstained, unanswerable)
    return a.f1 or 0.0


def abstention(abstained: np.ndarray, unanswerable: np.ndarray) -> m.Abstention:
    ids = [str(i) for i in range(len(unanswerable))]
    return m.abstention_scores(
        dict(zip(ids, map(bool, abstained), strict=True)),
        dict(zip(ids, map(bool, unanswerable), strict=True)),
    )


def stratified_folds(unanswerable: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of each question; each class is shuffled and dealt round-robin."""
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    y = np.asarray(unanswerable, bool)
    if min(int(y.sum()), int((~y).sum())) < k:
        raise ValueError(f"each class needs at least {k} questions for {k} folds")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


@dataclass(frozen=True)
class Logistic:
    """P(answerable | x) = sigmoid(w · (x - mean) / scale + b): features standardised on
    the data it was fitted on, L2-penalised weights (not the bias)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def raw(self) -> tuple[np.ndarray, float]:
        """The same rule on unstandardised features: (w', b') with w' · x + b' = z."""
        w = self.weights / self.scale
        return w, float(self.bias - w @ self.mean)


def fit_logistic(x: np.ndarray, answerable: np.ndarray, l2: float = 1.0) -> Logistic:
    """Newton's method (IRLS) on the penalised log-likelihood; a few iterations converge
    on a handful of standardised features."""
    x = np.asarray(x, np.float64)
    y = np.asarray(answerable, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Logistic(mean, scale, w[:-1], float(w[-1]))


def one_feature(column: int = 0) -> Fitter:
    """The feature itself as the score (nothing to fit but the threshold)."""
    return lambda _x, _y: lambda x: np.asarray(x, np.float64)[:, column]


def logistic(l2: float = 1.0) -> Fitter:
    return lambda x, y: fit_logistic(x, y, l2)


@dataclass(frozen=True)
class HeldOut:
    abstention: m.Abstention  # pooled over the held-out folds
    per_fold_f1: list[float | None]
    thresholds: list[float]  # fitted on each fold's training part
    abstained: np.ndarray  # each question's held-out verdict


def cross_validate(
    x: np.ndarray, unanswerable: np.ndarray, fitter: Fitter, *, k: int = 5, seed: int = 0
) -> HeldOut:
    """Fit the rule and its threshold on k-1 folds, predict the k-th; every question is
    predicted once, by a rule that never saw it."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(unanswerable, bool)
    fold = stratified_folds(y, k, seed)
    abstained = np.zeros(len(y), bool)
    per_fold: list[float | None] = []
    thresholds: list[float] = []
    for f in range(k):
        train, test = fold != f, fold == f
        score = fitter(x[train], ~y[train])
        t = best_threshold(score(x[train]), y[train])
        thresholds.append(t)
        abstained[test] = score(x[test]) < t
        per_fold.append(abstention(abstained[test], y[test]).f1)
    return HeldOut(abstention(abstained, y), per_fold, thresholds, abstained)


def repeated_f1(
    x: np.ndarray,
    unanswerable: np.ndarray,
    fitter: Fitter,
    *,
    k: int = 5,
    seeds: Sequence[int] = range(10),
) -> tuple[float, float]:
    """Mean and standard deviation of the pooled held-out F1 over several fold draws: one
    draw's figure moves by a few points with ~70 positives."""
    f1s = [cross_validate(x, unanswerable, fitter, k=k, seed=s).abstention.f1 or 0.0 for s in seeds]
    mean = float(np.mean(f1s))
    return mean, float(np.std(f1s)) if len(f1s) > 1 else math.nan
