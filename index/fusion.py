"""Combining the dense and lexical sides.

Reciprocal-rank fusion treats both lists as equally informed. They are not: when the
question and the passage are in different languages, BM25 over the question's own analysis
ranks noise, and RRF lets that noise push the right passage down (on the project's eval set,
mostly Spanish and English questions over French news: hit@1 0.985 dense alone, 0.880 with
RRF). So the dense cosine stays the backbone and BM25 adds a bounded bonus: its score,
normalised by the best lexical score of the question, times a small weight.

The lexical score of a passage is computed with the question analysed *in the passage's
language* (its stemmer and stopwords), so names, numbers and cognates ("autonomía" /
"autonomie", "Tánger" / "Tanger") match across languages, while the bonus stays too small to
override a clear dense decision. Measured on the eval set (answerable questions, hit@1):
dense 0.985; bonus 0.05 with per-passage-language analysis 0.989, and no language pair
below dense; bonus 0.1 with the question's analysis on same-language passages only 0.967.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FusionParams:
    method: str = "dense+bounded-bm25(passage-language analysis)"
    lexical_weight: float = 0.05
    candidates: int = 100
    # "Not in the corpus" when the top passage's cosine stands less than abstain_threshold
    # above the question's reference: the abstain_reference_rank-th best cosine. e5's
    # cosines sit in a narrow band whose level depends on the question (short, generic
    # questions score high against everything); measured against the question's own
    # 10th-best passage, an answer stands out where a near miss does not. On the eval set's
    # unanswerable questions: ROC AUC 0.905 for this margin, 0.802 for the raw cosine.
    abstain_threshold: float = 0.0
    abstain_reference_rank: int = 10
    highlight_term_weight: float = 0.01  # per shared term, added to a sentence's cosine

    def to_dict(self) -> dict:
        return asdict(self)


def fuse(dense: np.ndarray, lexical: np.ndarray, params: FusionParams) -> np.ndarray:
    """Fused scores for candidate rows, given their cosine and BM25 scores."""
    lex = lexical.astype(np.float32)
    top = float(lex.max()) if lex.size else 0.0
    bonus = lex / top if top > 0 else np.zeros_like(lex)
    return dense.astype(np.float32) + params.lexical_weight * bonus
