"""Items → cleaned, language-tagged, deduplicated articles in the store.

Every item ends in exactly one IngestReport bucket and one ingest-log row, written in the
same transaction as the article itself, so a crash never leaves an article without its
log entry or the other way round.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from akhbar.corpus.dedup import (
    NearDuplicateIndex,
    content_hash,
    minhash,
    signature_from_bytes,
    signature_to_bytes,
)
from akhbar.corpus.language import detect_language
from akhbar.corpus.models import Article, IngestReport, Outcome, RawItem, make_article_id
from akhbar.corpus.outlets import outlet_from_url
from akhbar.corpus.sources.decoding import text_problem
from akhbar.corpus.sources.rejection import Rejection, Skipped
from akhbar.corpus.store import ArticleStore

MAX_TEXT_BYTES = 1_000_000
MAX_TITLE_CHARS = 1_000

# C0/C1 controls and other invisible format characters, except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def valid_text(value: str) -> str:
    """Lone surrogates become U+FFFD; everything else is kept.

    A lone surrogate is half of a UTF-16 pair, cut by an exporter or written as a JSON
    ``"\\ud800"`` escape (a valid pair is joined by the JSON decoder). It cannot be stored as
    UTF-8. The rest of the record is intact, so it costs one visible replacement character,
    not the item; an item made mostly of them is refused by the not-text check.
    """
    return _SURROGATE.sub("\ufffd", value)


def safe_label(value: str) -> str:
    # Sources and reasons name things (file names decoded with surrogateescape, URLs):
    # the undecodable bytes stay visible as escapes rather than disappearing.
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def clean_text(text: str) -> str:
    """NFC, no control characters, single spaces, paragraphs kept as blank-line breaks."""
    text = unicodedata.normalize("NFC", valid_text(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_title(title: str) -> str:
    return " ".join(clean_text(title).split())


def _valid_item(item: RawItem) -> RawItem:
    def opt(value: str | None) -> str | None:
        return valid_text(value) if value is not None else None

    return replace(
        item,
        title=valid_text(item.title),
        body=valid_text(item.body),
        source=safe_label(item.source),
        outlet=opt(item.outlet),
        url=opt(item.url),
        author=opt(item.author),
        declared_language=opt(item.declared_language),
        external_id=opt(item.external_id),
    )


@dataclass(slots=True, frozen=True)
class _Decision:
    outcome: Outcome
    reason: str | None = None
    article_id: str | None = None
    duplicate_of: str | None = None


class _Ingestor:
    def __init__(self, store: ArticleStore) -> None:
        self.store = store
        self.near = NearDuplicateIndex()
        for article_id, blob in store.iter_signatures():
            self.near.add(article_id, signature_from_bytes(blob))

    def reject(self, source: str, reason: str) -> _Decision:
        with self.store.transaction() as conn:
            self.store.log(conn, source=source, outcome="rejected", reason=reason)
        return _Decision("rejected", reason)

    def handle(self, item: RawItem | Rejection) -> _Decision:
        if isinstance(item, Rejection):
            return self.reject(safe_label(item.source), safe_label(item.reason))
        try:
            return self._handle_item(_valid_item(item))
        except (sqlite3.Error, OSError, MemoryError):
            raise  # the store or the machine failed, not the item: stop the run
        except Exception as exc:
            # Whatever the cleaning, language or dedup steps choke on is this item's problem.
            reason = safe_label(f"could not process item: {type(exc).__name__}: {exc}")[:300]
            return self.reject(safe_label(item.source), reason)

    def _handle_item(self, item: RawItem) -> _Decision:
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
        elif not any(ch.isalnum() for ch in text):
            problem = "no letters or digits"
        else:
            problem = text_problem(f"{title}\n{text}")
        if problem:
            return self.reject(item.source, problem)

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
            outlet=clean_title(item.outlet) if item.outlet else outlet_from_url(item.url),
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
    store: ArticleStore,
    items: Iterable[RawItem | Rejection | Skipped],
    *,
    on_item: Callable[[str], None] | None = None,
) -> IngestReport:
    """Store every item; ``on_item`` receives each item's outcome (for progress display).

    Skipped files are listed in the report but are not items: no bucket, no log row.
    """
    report = IngestReport()
    ingestor = _Ingestor(store)
    for item in items:
        if isinstance(item, Skipped):
            report.skipped.append((safe_label(item.source), item.reason))
            continue
        if isinstance(item, Rejection) and item.unreadable:
            report.unreadable.append(safe_label(item.source))
        decision = ingestor.handle(item)
        if decision.outcome == "stored":
            report.stored += 1
        elif decision.outcome == "duplicate":
            report.duplicate += 1
        elif decision.outcome == "unchanged":
            report.unchanged += 1
        else:
            report.rejected += 1
            report.reasons.append((safe_label(item.source), decision.reason or ""))
        if on_item is not None:
            on_item(decision.outcome)
    return report
