"""The lexical side on its own: BM25 per passage language, saved and loaded as served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from akhbar.index.analysis import analyze
from akhbar.index.lexical import LexicalIndex

TEXTS = [
    "Le data center de Dakhla aura une capacité de 500 mégawatts.",
    "El centro de datos de Dajla tendrá una capacidad de 500 megavatios.",
    "Marruecos firma con Iberdrola un acuerdo sobre el hidrógeno verde en Dajla.",
    "Le Maroc et l'Espagne signent un accord sur l'hydrogène vert.",
    "The port of Tanger Med handled 10 million containers in 2024.",
    "Tanger Med, premier port de Méditerranée, dépasse les 10 millions de conteneurs.",
]
LANGS = ["fr", "es", "es", "fr", "en", "fr"]
CODES = ["fr", "es", "en"]
ROW_LANGS = np.array([CODES.index(lang) for lang in LANGS], np.int8)


@pytest.fixture(scope="module")
def lexical(tmp_path_factory: pytest.TempPathFactory) -> LexicalIndex:
    path = tmp_path_factory.mktemp("lexical")
    LexicalIndex.build(TEXTS, LANGS).save(path)
    return LexicalIndex.load(path)


def _bm25s_reference(lexical: LexicalIndex, query: str) -> np.ndarray:
    """bm25s's own get_scores, once per language, each kept on that language's rows."""
    out = np.zeros(len(TEXTS), np.float32)
    for code, language in enumerate(CODES):
        found = lexical._vocab.lookup(analyze(query, language))
        ids = [int(i) for i in found if i >= 0]
        if ids:
            rows = np.equal(ROW_LANGS, code)
            out[rows] = lexical._bm25.get_scores(ids)[rows]
    return out


@pytest.mark.parametrize(
    "query",
    [
        "Quelle capacité pour le data center de Dakhla ?",
        "¿Qué empresa firmó con Marruecos en Dajla?",
        "How many containers did Tanger Med handle in 2024?",
        "Tanger Tanger Tanger",  # a repeated term counts each time, as in bm25s
    ],
)
def test_scores_match_bm25s_per_passage_language(lexical: LexicalIndex, query: str) -> None:
    got = lexical.scores_in_passage_language(query, ROW_LANGS, CODES)
    np.testing.assert_allclose(got, _bm25s_reference(lexical, query), rtol=1e-5, atol=1e-6)
    assert got.any()


def test_names_and_numbers_meet_across_languages(lexical: LexicalIndex) -> None:
    scores = lexical.scores_in_passage_language("Tanger Med 10", ROW_LANGS, CODES)
    # The English and the French passage both name the port and the figure.
    assert scores[4] > 0 and scores[5] > 0
    assert set(np.argsort(-scores)[:2].tolist()) == {4, 5}


def test_mask_and_unknown_terms(lexical: LexicalIndex) -> None:
    mask = np.array([lang != "fr" for lang in LANGS])
    scores = lexical.scores_in_passage_language("Dakhla Dajla 500", ROW_LANGS, CODES, mask)
    assert not scores[~mask].any() and scores[1] > 0
    none = lexical.scores_in_passage_language("zzyzx qwertz", ROW_LANGS, CODES)
    assert none.shape == (len(TEXTS),) and not none.any()


def test_save_and_load_keep_the_scores(lexical: LexicalIndex, tmp_path: Path) -> None:
    built = LexicalIndex.build(TEXTS, LANGS)
    query = "accord hydrogène vert Maroc"
    expected = built.scores_in_passage_language(query, ROW_LANGS, CODES)
    np.testing.assert_allclose(
        lexical.scores_in_passage_language(query, ROW_LANGS, CODES), expected, rtol=1e-6
    )
