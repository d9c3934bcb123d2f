"""The hand-written Akhbar eval set: schema, loading with validation, gold checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Language = Literal["fr", "es", "en"]
ItemKind = Literal["article", "headline", "number", "name", "date", "unanswerable"]

DEFAULT_EVAL_SET = Path(__file__).parent / "data" / "eval_set.jsonl"


class EvalItem(BaseModel):
    """One question. ``answer`` is a short string found verbatim in a gold article, so
    answer-string hit@k can be scored without an LLM judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=3)
    language: Language
    answerable: bool
    gold_article_ids: list[str] = Field(default_factory=list)
    answer: str = ""
    kind: ItemKind

    @model_validator(mode="after")
    def _consistent(self) -> EvalItem:
        if self.answerable:
            if not self.gold_article_ids:
                raise ValueError("answerable item needs gold_article_ids")
            if not self.answer.strip():
                raise ValueError("answerable item needs an answer string")
            if self.kind == "unanswerable":
                raise ValueError("kind 'unanswerable' on an answerable item")
        else:
            if self.gold_article_ids or self.answer:
                raise ValueError("unanswerable item must have no gold ids and no answer")
            if self.kind != "unanswerable":
                raise ValueError("unanswerable item must have kind 'unanswerable'")
        if len(set(self.gold_article_ids)) != len(self.gold_article_ids):
            raise ValueError("duplicate gold_article_ids")
        return self


class EvalSetError(ValueError):
    """The eval file is malformed; the message lists every problem found, not just one."""


def load_eval_set(path: str | Path = DEFAULT_EVAL_SET) -> list[EvalItem]:
    items: list[EvalItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = EvalItem.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                problems.append(f"line {lineno}: {exc}")
                continue
            if item.id in seen:
                problems.append(f"line {lineno}: duplicate id {item.id!r}")
            seen.add(item.id)
            items.append(item)
    if problems:
        raise EvalSetError("\n".join(problems))
    return items


def check_gold(items: Iterable[EvalItem], get_text: Callable[[str], str | None]) -> list[str]:
    """Problems with the gold labels against a corpus; empty means all good.

    Every gold id must resolve to a text, and the answer must occur verbatim in at least
    one gold text (a question may cite parallel reports that word the answer differently).
    """
    problems: list[str] = []
    for item in items:
        if not item.answerable:
            continue
        texts: list[str] = []
        for doc_id in item.gold_article_ids:
            text = get_text(doc_id)
            if text is None:
                problems.append(f"{item.id}: gold article {doc_id} missing")
            else:
                texts.append(text)
        if texts and not any(item.answer in t for t in texts):
            problems.append(f"{item.id}: answer {item.answer!r} not in its gold article text")
    return problems


def qrels_from_items(items: Iterable[EvalItem]) -> dict[str, dict[str, int]]:
    """Binary qrels for the answerable items, in the shape ``eval.metrics`` expects."""
    return {i.id: {d: 1 for d in i.gold_article_ids} for i in items if i.answerable}
