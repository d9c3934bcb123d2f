"""Plain records that cross the corpus boundary (parsers → store → index)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Kind = Literal["article", "headline"]
Outcome = Literal["stored", "duplicate", "rejected", "unchanged"]


@dataclass(slots=True)
class RawItem:
    """One item as a parser found it, before language detection and dedup."""

    title: str
    body: str
    source: str  # file path or URL the item came from
    kind: Kind = "article"
    outlet: str | None = None
    url: str | None = None
    published: date | None = None
    author: str | None = None
    declared_language: str | None = None  # e.g. a feed's <language>, used when detection is unsure
    external_id: str | None = None  # an id the source gives (JSONL id, feed guid)


@dataclass(slots=True)
class Article:
    """A stored article. ``text`` is what chunk offsets point into."""

    id: str
    title: str
    text: str
    language: str
    kind: Kind = "article"
    outlet: str | None = None
    url: str | None = None
    published: date | None = None
    author: str | None = None
    source: str | None = None
    duplicate_of: str | None = None


@dataclass(slots=True, frozen=True)
class Chunk:
    """A span of an article's text: ``article.text[start:end] == text``."""

    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    language: str
    # Sentence spans relative to the chunk text, precomputed for answer highlighting.
    sentences: tuple[tuple[int, int], ...] = field(default=())


@dataclass(slots=True)
class IngestReport:
    """Every input item ends in exactly one bucket: nothing is silently lost."""

    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    unchanged: int = 0
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (source, why) for rejected
    # Named targets that could not be read at all (also counted in rejected, with reasons).
    unreadable: list[str] = field(default_factory=list)
    # Files a directory walk passed over (unknown format): not items, so not in ``total``.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.unchanged += other.unchanged
        self.reasons.extend(other.reasons)
        self.unreadable.extend(other.unreadable)
        self.skipped.extend(other.skipped)

    @property
    def total(self) -> int:
        return self.stored + self.duplicate + self.rejected + self.unchanged


def _norm_key(text: str) -> str:
    return " ".join(text.casefold().split())


def make_article_id(item: RawItem) -> str:
    """A stable id: the same item from the same source always gets the same id.

    A source-given id wins (JSONL ``id``, feed guid); otherwise the URL; otherwise the
    normalised title and outlet, so that a headline seen on two ticker pages is one item.
    """
    if item.external_id:
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in item.external_id.strip())
        if 0 < len(safe) <= 120:
            return safe
    key = item.url or f"{item.kind}|{_norm_key(item.title)}|{_norm_key(item.outlet or '')}"
    prefix = "h" if item.kind == "headline" else "a"
    return f"{prefix}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"
