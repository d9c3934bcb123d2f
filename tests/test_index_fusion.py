"""Fusion of the dense and lexical sides: a bounded BM25 bonus, normalised per language."""

from __future__ import annotations

import numpy as np

from akhbar.index.fusion import FusionParams, fuse


def test_bonus_is_normalised_within_each_passage_language() -> None:
    params = FusionParams(lexical_weight=0.03)
    dense = np.array([0.879, 0.878, 0.85], np.float32)
    # A French question: French passages (code 0) share its words, the Spanish passage
    # (code 1) only its names, so its raw BM25 is lower though it is the best Spanish match.
    lexical = np.array([4.0, 10.1, 2.0], np.float32)
    langs = np.array([1, 0, 0], np.uint8)
    fused = fuse(dense, lexical, langs, params)
    np.testing.assert_allclose(fused, dense + 0.03 * np.array([1.0, 1.0, 2.0 / 10.1]), rtol=1e-6)
    assert fused[0] > fused[1]
    # Under one global maximum the French passage would have overtaken the dense favourite.
    global_max = dense + 0.03 * lexical / lexical.max()
    assert global_max[1] > global_max[0]


def test_no_lexical_match_leaves_the_cosine() -> None:
    dense = np.array([0.8, 0.7], np.float32)
    fused = fuse(dense, np.zeros(2, np.float32), np.array([0, 1], np.uint8), FusionParams())
    np.testing.assert_array_equal(fused, dense)
