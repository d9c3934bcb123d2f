"""How well the question language is detected: the eval set's questions plus hand-written
1-4 word ones (eval/data/short_questions.jsonl), overall, per language and per set.

``python -m eval.language_id`` prints the figures, the misses and the time a question.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from akhbar.corpus.language import detect_language, warm_up
from akhbar.eval.dataset import DEFAULT_EVAL_SET, load_eval_set

SHORT_QUESTIONS = Path(__file__).parent / "data" / "short_questions.jsonl"


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    language: str
    source: str  # "eval_set" or "short"


@dataclass
class Accuracy:
    total: int = 0
    right: int = 0
    per_language: Counter[str] = field(default_factory=Counter)
    right_per_language: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[LabelledQuestion, str]] = field(default_factory=list)

    @property
    def overall(self) -> float:
        return self.right / self.total if self.total else float("nan")

    def of(self, language: str) -> float:
        n = self.per_language[language]
        return self.right_per_language[language] / n if n else float("nan")


def load_short_questions(path: Path = SHORT_QUESTIONS) -> list[LabelledQuestion]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append(LabelledQuestion(row["question"], row["language"], "short"))
    return items


def labelled_questions(eval_set: Path = DEFAULT_EVAL_SET) -> list[LabelledQuestion]:
    """The eval set's questions, then the short ones."""
    items = [LabelledQuestion(i.question, i.language, "eval_set") for i in load_eval_set(eval_set)]
    return items + load_short_questions()


def accuracy(
    items: Iterable[LabelledQuestion], detect: Callable[[str], str] = detect_language
) -> Accuracy:
    acc = Accuracy()
    for item in items:
        got = detect(item.question)
        acc.total += 1
        acc.per_language[item.language] += 1
        if got == item.language:
            acc.right += 1
            acc.right_per_language[item.language] += 1
        else:
            acc.misses.append((item, got))
    return acc


def main() -> None:
    items = labelled_questions()
    warm_up()
    accuracy(items)  # once untimed: caches and branch predictors, as on a running server
    t0 = time.perf_counter()
    acc = accuracy(items)
    per_question_ms = (time.perf_counter() - t0) / len(items) * 1000
    print(f"{acc.total} questions: accuracy {acc.overall:.3f}")
    for lang in sorted(acc.per_language):
        print(f"  {lang}: {acc.of(lang):.3f} ({acc.per_language[lang]})")
    for source in ("eval_set", "short"):
        part = accuracy(i for i in items if i.source == source)
        langs = ", ".join(f"{k} {part.of(k):.3f}" for k in sorted(part.per_language))
        print(f"  {source}: {part.overall:.3f} of {part.total} ({langs})")
    print(f"{per_question_ms:.3f} ms a question (mean, one thread)")
    for item, got in acc.misses:
        print(f"  miss: {item.question!r} is {item.language}, detected {got}")


if __name__ == "__main__":
    main()
