"""Two small fitted models of the answer layer: which sentence of a passage answers (the
highlight) and whether a passage answers at all (abstention).

Both read only what the answer layer already holds when it scores a hit: the cosines of
the passage and of each of its sentences, the fused and BM25 scores, the question's
reference cosine, and a language-aware analysis of the question and the passage
(``index/analysis.py``, cached). Both are linear: the highlight takes the sentence with the
highest weighted sum, abstention a logistic regression with a threshold on its
probability. Their coefficients are fitted by cross-validation on the eval set
(``eval/answer_study.py``; figures in eval/results/answer-study.md) and ship in
``index/data/answer_model.json``; what the service runs is what the study scored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from akhbar.index.analysis import LANGUAGES, analyze_cached, passage_terms

# Questions whose answer is a quantity, a date or a time: the sentence that answers holds a
# number the question does not.
_WANTS_NUMBER = re.compile(
    r"\b(combien|how (many|much|old|long|far)|cu[aá]nt[oa]s?|quel(le)?s? (est|sont|était|fut) "
    r"(le|la|les) (nombre|montant|taux|prix|co[uû]t|capacit|population|âge)|"
    r"what (is|was) the (number|amount|rate|price|cost|capacity|population)|"
    r"en quelle ann[ée]e|in what year|what year|when|quand|cu[aá]ndo|en qu[ée] a[nñ]o|"
    r"quel âge|qu[ée] edad|at what time|à quelle heure|a qu[ée] hora|what time)\b",
    re.IGNORECASE,
)
# Questions whose answer is a name (person, place, organisation, title).
_WANTS_NAME = re.compile(
    r"\b(qui|who|whom|which|qui[eé]n(es)?|quel(le)?s?|qu[eé]|c[oó]mo se llama|"
    r"comment s'appel\w*|what (is|was) the name)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-ZÀ-Ý][\w\-’']+")
_WORD = re.compile(r"\w+")

HIGHLIGHT_FEATURES = ("cosine", "first", "new_number", "new_name", "short")
ANSWER_FEATURES = (
    "margin",  # the passage's cosine above the question's reference cosine
    "sentence_margin",  # its best sentence's cosine above the same reference
    "score",  # the fused score the passage was ranked by
    "coverage",  # the question's content terms found in the title and passage
    "sentence_coverage",  # ... in the highlighted sentence
    "numbers",  # the question's numbers found in the passage
    "names",  # the question's capitalised words found in the passage
    "same_language",
    "bm25",
    "typed_number",  # a question asking a number: the highlight holds a new one
    "typed_name",  # a question asking a name: the highlight holds a new one
)


@dataclass(frozen=True)
class Cues:
    """What the question asks, read once per question."""

    question: str
    language: str
    numbers: frozenset[str]
    names: tuple[str, ...]  # capitalised words past the first, as written
    words: frozenset[str]  # the question's words, lowercased: a name in it is not new
    wants_number: bool
    wants_name: bool


@lru_cache(maxsize=4096)
def question_cues(question: str, language: str) -> Cues:
    terms: set[str] = set(analyze_cached(question, language))
    for lang in LANGUAGES:
        terms |= set(analyze_cached(question, lang))
    words = question.split()
    return Cues(
        question=question,
        language=language,
        numbers=frozenset(t for t in terms if t.isdigit()),
        names=tuple(_CAPITALISED.findall(" ".join(words[1:]))),
        words=frozenset(w.lower() for w in _WORD.findall(question)),
        wants_number=bool(_WANTS_NUMBER.search(question)),
        wants_name=bool(_WANTS_NAME.search(question)),
    )


def _new_name(sentence: str, cues: Cues) -> bool:
    # The sentence's first word is capitalised whatever it is.
    return any(c.lower() not in cues.words for c in _CAPITALISED.findall(sentence)[1:])


def _new_number(tokens: Sequence[str], cues: Cues) -> bool:
    return any(t.isdigit() and t not in cues.numbers for t in tokens)


def sentence_features(
    text: str,
    sentences: Sequence[tuple[int, int]],
    language: str,
    cosines: np.ndarray | None,
    cues: Cues,
) -> np.ndarray:
    """(sentences, HIGHLIGHT_FEATURES) for one passage. ``cosines``: each sentence's cosine
    to the question (None where the index has no sentence vectors: 0 for all)."""
    rows = []
    for i, (a, b) in enumerate(sentences):
        sentence = text[a:b]
        tokens = analyze_cached(sentence, language)
        rows.append(
            [
                0.0,
                float(i == 0),
                float(cues.wants_number and _new_number(tokens, cues)),
                float(cues.wants_name and _new_name(sentence, cues)),
                float(len(tokens) <= 4),  # a dateline or a fragment, not a statement
            ]
        )
    x = np.array(rows, np.float64).reshape(len(rows), len(HIGHLIGHT_FEATURES))
    if cosines is not None and len(cosines) == len(rows) and len(rows):
        c = np.asarray(cosines, np.float64)
        x[:, 0] = c - c.max()
    return x


def answer_features(
    *,
    cues: Cues,
    title: str,
    text: str,
    sentences: Sequence[tuple[int, int]],
    language: str,
    highlight: tuple[int, int],
    dense: float,
    margin: float,
    score: float,
    lexical: float,
    best_sentence: float,
) -> np.ndarray:
    """ANSWER_FEATURES of one hit (``sentences``: the passage's sentence spans).
    ``best_sentence``: its best sentence's cosine (the
    passage's own where it has no sentence vectors)."""
    reference = dense - margin
    terms = passage_terms(text, sentences, language) | set(analyze_cached(title, language))
    # The question analysed as the passage is, and in its own language.
    content = set(analyze_cached(cues.question, language)) | set(
        analyze_cached(cues.question, cues.language)
    )
    sentence = text[highlight[0] : highlight[1]]
    sentence_tokens = analyze_cached(sentence, language)
    names = [n for n in (analyze_cached(n, language) for n in cues.names) if n]
    return np.array(
        [
            margin,
            best_sentence - reference,
            score,
            len(content & terms) / max(1, len(content)),
            len(content & set(sentence_tokens)) / max(1, len(content)),
            (sum(n in terms for n in cues.numbers) / len(cues.numbers) if cues.numbers else 1.0),
            sum(all(t in terms for t in n) for n in names) / len(names) if names else 1.0,
            float(language == cues.language),
            lexical,
            float(_new_number(sentence_tokens, cues)) if cues.wants_number else 1.0,
            float(_new_name(sentence, cues)) if cues.wants_name else 1.0,
        ],
        np.float64,
    )


@dataclass(frozen=True)
class Linear:
    """``weights · (x - mean) / scale + bias`` over named features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - np.array(self.mean)) / np.array(self.scale)
        return z @ np.array(self.weights) + self.bias

    @classmethod
    def from_dict(cls, d: dict, names: tuple[str, ...]) -> Linear:
        if tuple(d["features"]) != names:
            raise ValueError(f"the model's features {d['features']} are not {list(names)}")
        n = len(names)
        model = cls(
            tuple(d["features"]),
            tuple(map(float, d["mean"])),
            tuple(map(float, d["scale"])),
            tuple(map(float, d["weights"])),
            float(d["bias"]),
        )
        if not len(model.mean) == len(model.scale) == len(model.weights) == n:
            raise ValueError(f"the model needs {n} means, scales and weights")
        if any(s <= 0 for s in model.scale):
            raise ValueError("the model's scales must be positive")
        return model

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
        }


@dataclass(frozen=True)
class AnswerModel:
    """The highlight's sentence scorer and abstention's logistic regression with its
    threshold on P(answers)."""

    highlight: Linear
    answers: Linear
    threshold: float
    source: str = ""  # what it was fitted on, recorded with it

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.answers(x)))

    @classmethod
    def from_dict(cls, d: dict) -> AnswerModel:
        return cls(
            Linear.from_dict(d["highlight"], HIGHLIGHT_FEATURES),
            Linear.from_dict(d["answers"], ANSWER_FEATURES),
            float(d["threshold"]),
            str(d.get("source", "")),
        )

    def to_dict(self) -> dict:
        return {
            "highlight": self.highlight.to_dict(),
            "answers": self.answers.to_dict(),
            "threshold": self.threshold,
            "source": self.source,
        }

    @classmethod
    def load(cls, path: str | Path) -> AnswerModel:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


SHIPPED = "data/answer_model.json"


@lru_cache(maxsize=1)
def shipped_model() -> AnswerModel:
    """The coefficients that ship with the package (read once; immutable)."""
    text = resources.files("akhbar.index").joinpath(SHIPPED).read_text(encoding="utf-8")
    return AnswerModel.from_dict(json.loads(text))
