"""Language identification for the served languages (fr, es, en, ar).

langdetect alone is unreliable on headline-length text and, being randomised, not
reproducible unless seeded. Each call therefore builds a detector from a seeded factory
with a prior restricted to the served languages, and blends its probabilities with cheap
lexical evidence (stopwords, diacritics, script) that is strong precisely on short text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from langdetect.detector_factory import DetectorFactory, init_factory
from langdetect.lang_detect_exception import LangDetectException

SERVED: tuple[str, ...] = ("fr", "es", "en", "ar")
UNDETERMINED = "und"
MIN_PROBABILITY = 0.6
_SHORT_CHARS = 120  # below this, lexical cues weigh as much as langdetect


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": _wordset(
        "le la les des du de un une et est sont au aux pour par sur dans avec ce cette ces qui"
        " que qu il elle ils elles nous vous leur leurs son sa ses se ne pas plus mais ou été"
        " entre après avant chez face selon lors comme aussi très vers depuis contre sous d l"
        " c n s j m à où être avoir fait en a y on dont ont était sera aura même tout tous toute"
        " sans non si lui notre votre quand encore déjà ici alors donc car dès puis ainsi"
    ),
    "es": _wordset(
        "el la los las de del un una y es son al para por en con que se su sus lo le les no más"
        " pero como este esta estos estas entre tras según desde sobre hacia ha han fue muy"
        " también debido ante cuando donde ya a y uno sin tiene está están ser hay porque"
        " sí durante hasta otro otra"
    ),
    "en": _wordset(
        "the of and to in is are was were for on with by at from that this these it its as be"
        " has have had not but or an after before over about into who which will would said"
        " says"
    ),
}
# Letters that, within the served languages, belong to one language only.
_MARKERS: dict[str, str] = {
    "fr": "çèêëîïôûùœâ",
    "es": "ñ¿¡",
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF]")
_LATIN = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]")
_FR_ELISION = re.compile(r"\b(?:l|d|qu|n|s|c|j|m)['’]\w", re.IGNORECASE)


@lru_cache(maxsize=1)
def _factory() -> DetectorFactory:
    # A private factory, so no module-level langdetect state is mutated and seeding is local.
    from langdetect import detector_factory

    init_factory()
    shared = detector_factory._factory
    factory = DetectorFactory()
    factory.word_lang_prob_map = shared.word_lang_prob_map
    factory.langlist = shared.langlist
    factory.seed = 0
    return factory


def _langdetect_probs(text: str) -> dict[str, float]:
    factory = _factory()
    served = [lang for lang in SERVED if lang in factory.langlist]
    detector = factory.create()
    detector.set_prior_map({lang: 1.0 for lang in served})
    detector.append(text)
    try:
        probs = detector.get_probabilities()
    except LangDetectException:
        return {}
    found = {p.lang: p.prob for p in probs if p.lang in SERVED}
    total = sum(found.values())
    return {k: v / total for k, v in found.items()} if total > 0 else {}


def _cue_probs(text: str) -> tuple[dict[str, float], float]:
    """Lexical-cue distribution and how much evidence (cue count) it rests on."""
    lowered = text.casefold()
    words = _WORD.findall(lowered.replace("’", "'"))
    scores = {lang: 0.0 for lang in ("fr", "es", "en")}
    for w in words:
        owners = [lang for lang, stops in _STOPWORDS.items() if w in stops]
        # Words shared by several languages ("de", "la", "en") are no evidence either way.
        if len(owners) == 1:
            scores[owners[0]] += 1.0
    for lang, letters in _MARKERS.items():
        scores[lang] += 1.5 * sum(lowered.count(c) for c in letters)
    scores["fr"] += 1.5 * len(_FR_ELISION.findall(text))
    total = sum(scores.values())
    if total == 0:
        return {}, 0.0
    return {k: v / total for k, v in scores.items()}, total


def language_scores(text: str) -> dict[str, float]:
    """Blended probabilities over the served languages (empty when there is no evidence)."""
    arabic = len(_ARABIC.findall(text))
    latin = len(_LATIN.findall(text))
    if arabic + latin == 0:
        return {}
    if arabic > latin:
        return {"ar": arabic / (arabic + latin)}
    ld = _langdetect_probs(text)
    cues, evidence = _cue_probs(text)
    if not ld:
        return cues
    if not cues:
        return ld
    # One or two cue words are weak evidence; a handful on a short text is strong.
    w_cues = (0.5 if len(text) < _SHORT_CHARS else 0.2) * min(1.0, evidence / 3)
    return {
        k: (1 - w_cues) * ld.get(k, 0.0) + w_cues * cues.get(k, 0.0)
        for k in SERVED
        if k in ld or k in cues
    }


def normalise_language(code: str | None) -> str | None:
    """'fr-FR', 'FR', 'fr_CA', 'french' → 'fr'; None if not a served language."""
    if not code:
        return None
    low = code.strip().casefold().replace("_", "-")
    base = low.split("-")[0]
    names = {"french": "fr", "français": "fr", "spanish": "es", "español": "es",
             "english": "en", "arabic": "ar"}  # fmt: skip
    base = names.get(low, base)
    return base if base in SERVED else None


def detect_language(text: str, declared: str | None = None) -> str:
    """Served-language code of ``text``; the declared language when detection is unsure."""
    declared_code = normalise_language(declared)
    scores = language_scores(text[:5000])
    if scores:
        # Ties go to the earlier served language, never to dict/set iteration order.
        best = max(SERVED, key=lambda k: (scores.get(k, 0.0), -SERVED.index(k)))
        prob = scores.get(best, 0.0)
        if prob >= MIN_PROBABILITY:
            return best
        if declared_code:
            return declared_code
        return best
    return declared_code or UNDETERMINED
