"""Items → cleaned, language-tagged, deduplicated articles in the store.

Every item ends in exactly one IngestReport bucket and one ingest-log row, written in the
same transaction as the article itself, so a crash never leaves an article without its
log entry or the other way round.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corpus.dedup import (
    NearDuplicateIndex,
    content_hash,
    minhash,
    signature_from_bytes,
    signature_to_bytes,
)
from corpus.language import detect_language
from corpus.models import Article, IngestReport, Outcome, RawItem, make_article_id
from corpus.sources.rejection import Rejection
from corpus.store import Store

MAX_TEXT_BYTES = 1_000_000
MAX_TITLE_CHARS = 1_000

# C0/C1 controls and other invisible format characters, except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC, no control characters, single spaces, paragraphs kept as blank-line breaks."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_title(title: str) -> str:
    return " ".join(clean_text(title).split())


@dataclass(slots=True, frozen=True)
class _Decision:
    outcome: Outcome
    reason: str | None = None
    article_id: str | None = None
    duplicate_of: str | None = None


class _Ingestor:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.near = NearDuplicateIndex()
        for article_id, blob in store.iter_signatures():
            self.near.add(article_id, signature_from_bytes(blob))

    def handle(self, item: RawItem | Rejection) -> _Decision:
        if isinstance(item, Rejection):
            decision = _Decision("rejected", item.reason)
            with self.store.transaction() as conn:
                self.store.log(conn, source=item.source, outcome="rejected", reason=item.reason)
            return decision

        title = clean_title(item.title)
        text = clean_text(item.body)
        kind = item.kind
        if not text and title:
            # A title-only item (feed entry without description) is a headline.
            text, kind = title, "headline"
        problem = None
        if not text:
            problem = "empty item: no title and no text"
        elif len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            problem = f"text over {MAX_TEXT_BYTES} bytes"
        elif len(title) > MAX_TITLE_CHARS:
            problem = f"title over {MAX_TITLE_CHARS} characters"
        if problem:
            with self.store.transaction() as conn:
                self.store.log(conn, source=item.source, outcome="rejected", reason=problem)
            return _Decision("rejected", problem)

        article_id = make_article_id(item)
        digest = content_hash(text, kind)
        previous = self.store.stored_state(article_id)
        if previous is not None and previous.content_hash == digest:
            with self.store.transaction() as conn:
                self.store.log(
                    conn,
                    source=item.source,
                    item_key=article_id,
                    outcome="unchanged",
                    article_id=article_id,
                    duplicate_of=previous.duplicate_of,
                )
            return _Decision("unchanged", article_id=article_id)

        signature = minhash(text, kind)
        duplicate_of = self.store.find_canonical_by_hash(digest, exclude=article_id)
        if duplicate_of is None and signature is not None:
            duplicate_of = self.near.query(signature, exclude=article_id)

        language_input = text if kind == "headline" else f"{title}\n{text}"
        article = Article(
            id=article_id,
            title=title,
            text=text,
            language=detect_language(language_input, item.declared_language),
            kind=kind,
            outlet=clean_title(item.outlet) if item.outlet else None,
            url=item.url,
            published=item.published,
            author=clean_title(item.author) if item.author else None,
            source=item.source,
            duplicate_of=duplicate_of,
        )
        outcome: Outcome = "duplicate" if duplicate_of else "stored"
        with self.store.transaction() as conn:
            self.store.put_article(
                conn,
                article,
                content_hash=digest,
                signature=signature_to_bytes(signature) if signature is not None else None,
            )
            self.store.log(
                conn,
                source=item.source,
                item_key=article_id,
                outcome=outcome,
                article_id=article_id,
                duplicate_of=duplicate_of,
            )
        # Only canonical articles are near-duplicate targets, so chains stay one level deep.
        if signature is not None and duplicate_of is None:
            self.near.add(article_id, signature)
        else:
            self.near.remove(article_id)
        return _Decision(outcome, article_id=article_id, duplicate_of=duplicate_of)


def ingest(
    store: Store,
    items: Iterable[RawItem | Rejection],
    *,
    on_item: Callable[[str], None] | None = None,
) -> IngestReport:
    """Store every item; ``on_item`` receives each item's outcome (for progress display)."""
    report = IngestReport()
    ingestor = _Ingestor(store)
    for item in items:
        decision = ingestor.handle(item)
        if decision.outcome == "stored":
            report.stored += 1
        elif decision.outcome == "duplicate":
            report.duplicate += 1
        elif decision.outcome == "unchanged":
            report.unchanged += 1
        else:
            report.rejected += 1
            report.reasons.append((getattr(item, "source", "?"), decision.reason or ""))
        if on_item is not None:
            on_item(decision.outcome)
    return report
