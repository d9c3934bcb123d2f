"""Combining the dense and lexical sides.

Reciprocal-rank fusion treats both lists as equally informed. They are not: when the
question and the passage are in different languages, BM25 over the question's own analysis
ranks noise, and RRF lets that noise push the right passage down (on the project's eval set,
mostly Spanish and English questions over French news: hit@1 0.985 dense alone, 0.880 with
RRF). So the dense cosine stays the backbone and BM25 adds a bounded bonus: its score,
normalised by the best lexical score among the candidates *in the same language*, times a
small weight.

The lexical score of a passage is computed with the question analysed *in the passage's
language* (its stemmer and stopwords), so names, numbers and cognates ("autonomía" /
"autonomie", "Tánger" / "Tanger") match across languages, while the bonus stays too small to
override a clear dense decision.

Why per language: scores from different analyses of the question are not comparable. A
French question analysed in French shares every content word with French passages, and
analysed in Spanish only its names and numbers with Spanish ones; normalised by one global
maximum, the bonus then ranks same-language passages above the right passage in another
language. Normalised per language, it says which passage of each language matches best.

Chosen on dev material (the eval set, XQuAD's even-numbered articles, 300 XQuAD-R questions
per language, PIAF), offline from each question's candidates; nDCG@10 unless noted:

    fusion                    eval hit@1  XQuAD en→es dev/test  XQuAD-R mAP@20  PIAF
    dense alone               0.985       0.940 / 0.941         0.281           0.782
    global max, weight 0.05   0.989       0.926 / 0.932         0.239           0.842
    global max, weight 0.03   0.989       0.941 / 0.942         0.256           0.838
    per language, 0.05        0.982       0.920 / 0.926         0.276           0.841
    per language, 0.03        0.989       0.939 / 0.941         0.284           0.838
    per language, 0.02        0.985       0.940 / 0.944         0.286           0.830

Per language at 0.03 is the only one at or above dense on every slice (to 0.001 on XQuAD
en→es); a larger weight loses English questions over Spanish paragraphs, a smaller one the
eval set's English questions over French news (0.967 vs 0.978 at 0.02).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from akhbar.index.base import AnswerParams, Candidates, Mode


@dataclass(frozen=True)
class FusionParams:
    method: str = "dense+bounded-bm25(passage-language analysis, per-language max)"
    lexical_weight: float = 0.03
    candidates: int = 100
    # Margins are measured from the question's reference: the abstain_reference_rank-th
    # best cosine. e5's cosines sit in a narrow band whose level depends on the question
    # (short, generic questions score high against everything); measured against the
    # question's own 10th-best passage, an answer stands out where a near miss does not.
    # The margin is one feature of the answer model (index/answerability.py), which decides
    # abstention and the highlight; abstain_threshold (the former margin rule) and
    # highlight_term_weight stay recorded so that manifests written before still load.
    abstain_threshold: float = 0.0
    abstain_reference_rank: int = 10
    highlight_term_weight: float = 0.01
    # The rerank of the first candidates (index/rerank.py), fitted on dev splits by
    # eval/rerank_study.py; 0 candidates turns it off.
    rerank_depth: int = 30
    sentence_weight: float = 1.0
    second_view_weight: float = 0.15
    sentence_weight_alone: float = 1.25  # when the second view is off
    coverage_weight: float = 0.125

    def to_dict(self) -> dict:
        return asdict(self)

    def answer_params(self) -> AnswerParams:
        return AnswerParams(
            self.abstain_threshold,
            self.highlight_term_weight,
            self.rerank_depth,
            self.sentence_weight,
            self.second_view_weight,
            self.sentence_weight_alone,
            self.coverage_weight,
        )


def fuse(
    dense: np.ndarray, lexical: np.ndarray, languages: np.ndarray, params: FusionParams
) -> np.ndarray:
    """Fused scores for candidate rows, given their cosine, BM25 score and language code."""
    lex = lexical.astype(np.float32)
    bonus = np.zeros_like(lex)
    for code in np.unique(languages):
        same = languages == code
        top = float(lex[same].max())
        if top > 0:
            bonus[same] = lex[same] / top
    return dense.astype(np.float32) + params.lexical_weight * bonus


def rank(
    keys: np.ndarray,
    dense: np.ndarray,
    lexical: np.ndarray,
    languages: np.ndarray,
    n_dense: int,
    params: FusionParams,
    mode: Mode,
) -> Candidates:
    """Candidates in rank order for ``mode``, given each one's key, cosine, BM25 score and
    language code; the first ``n_dense`` are the dense side's own (the reference cosine
    for abstention is read among them)."""
    ranked = np.sort(dense[:n_dense])[::-1]
    reference = (
        float(ranked[min(params.abstain_reference_rank, len(ranked)) - 1]) if len(ranked) else 0.0
    )
    if mode == "hybrid":
        score = fuse(dense, lexical, languages, params)
    elif mode == "dense":
        score = dense
    else:
        score = lexical
    order = np.argsort(-score, kind="stable")
    return Candidates(
        keys=keys[order],
        score=np.asarray(score, np.float32)[order],
        dense=np.asarray(dense, np.float32)[order],
        lexical=np.asarray(lexical, np.float32)[order],
        reference=reference,
    )
