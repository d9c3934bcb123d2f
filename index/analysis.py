"""Per-language lexical analysis for BM25: fold case and accents, drop stopwords, stem."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import bm25s.stopwords as sw
import Stemmer

from akhbar.corpus.text import fold

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMERS = {"fr": "french", "es": "spanish", "en": "english", "ar": "arabic"}
_STOPWORDS = {
    "fr": sw.STOPWORDS_FRENCH,
    "es": sw.STOPWORDS_SPANISH,
    "en": sw.STOPWORDS_EN,
}
# The languages with a full analysis (stopwords and a stemmer).
LANGUAGES: tuple[str, ...] = tuple(_STOPWORDS)


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Stemmer.Stemmer | None:
    name = _STEMMERS.get(language)
    return Stemmer.Stemmer(name) if name else None


@lru_cache(maxsize=8)
def _stopwords(language: str) -> frozenset[str]:
    return frozenset(fold(w) for w in _STOPWORDS.get(language, ()))


def analyze(text: str, language: str) -> list[str]:
    """Tokens for BM25. Numbers are kept whole ("4.800" → "4", "800" is avoided by joining
    digit groups) because names and figures are what the lexical side is for."""
    stop = _stopwords(language)
    stemmer = _stemmer(language)
    text = re.sub(r"(?<=\d)[.,\u202f\u00a0 ](?=\d{3}\b)", "", text)
    words = [w for w in _WORD.findall(fold(text)) if w not in stop]
    if stemmer is None:
        return words
    return [w if w.isdigit() else s for w, s in zip(words, stemmer.stemWords(words), strict=True)]


@lru_cache(maxsize=16_384)
def analyze_cached(text: str, language: str) -> tuple[str, ...]:
    """``analyze`` for query time, where questions and the sentences of popular passages
    come back again and again and accent folding in Python is the costly part. Not for
    index builds: those see every text once and would only fill the cache."""
    return tuple(analyze(text, language))


def passage_terms(text: str, sentences: Sequence[tuple[int, int]], language: str) -> set[str]:
    """A passage's analysed terms at query time, as the union of its sentences': the
    highlight analyses (and caches) the same sentences, so no passage is analysed twice."""
    terms: set[str] = set()
    for a, b in sentences or ((0, len(text)),):
        terms.update(analyze_cached(text[a:b], language))
    return terms
