"""RSS 2.0 / Atom feeds via feedparser, which recovers what it can from broken XML."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date
from typing import Any

import feedparser

from akhbar.corpus.dates import parse_date
from akhbar.corpus.models import RawItem
from akhbar.corpus.sources.rejection import Rejection

_TAG = re.compile(r"<[^>]+>")
_CHAR_REF = re.compile(r"&#([xX][0-9A-Fa-f]+|[0-9]+);?")
_BLOCK_END = re.compile(r"</(?:p|div|li|h[1-6]|blockquote)\s*>|<br\s*/?>", re.I)


def html_to_text(fragment: str) -> str:
    """Feed summaries are HTML fragments: keep paragraph breaks, drop tags and entities."""
    text = _BLOCK_END.sub("\n\n", fragment)
    text = _TAG.sub(" ", text)
    return html_lib.unescape(text).strip()


def _http_url(link: str | None) -> str | None:
    # feedparser turns a permalink-less guid into "link"; only real URLs are kept.
    return link if link and link.startswith(("http://", "https://")) else None


def _entry_date(entry: Any) -> date | None:
    # dict.get, not entry.get: feedparser maps a missing `updated` to `published` with a
    # DeprecationWarning on every such entry; the keys are read in order here anyway.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, key)
        if parsed:
            try:
                return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
            except ValueError:
                continue
    for key in ("published", "updated", "created", "dc_date"):
        if (raw := dict.get(entry, key)) and (d := parse_date(raw)):
            return d
    return None


def _entry_body(entry: Any) -> str:
    contents = entry.get("content") or []
    best = max((c.get("value", "") for c in contents), key=len, default="")
    summary = entry.get("summary", "") or ""
    raw = best if len(best) >= len(summary) else summary
    return html_to_text(raw)


def _xml_char_ok(code: int) -> bool:
    # The characters XML 1.0 allows; a reference to anything else is an error in the feed.
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _char_ref(m: re.Match[str]) -> str:
    digits = m[1]
    try:
        code = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits)
    except ValueError:
        return "\ufffd"
    return m[0] if _xml_char_ok(code) else "\ufffd"


def replace_bad_char_refs(text: str) -> str:
    """``&#xD800;``, ``&#0;`` and other references to characters XML forbids become U+FFFD.

    feedparser's lenient parser turns them into Python strings it cannot encode and
    crashes; one bad reference should cost one character, not the whole feed.
    """
    return _CHAR_REF.sub(_char_ref, text)


def parse_feed(content: str, source: str) -> list[RawItem | Rejection]:
    """Items of an RSS/Atom feed; a broken or entry-less feed is a Rejection."""
    try:
        parsed = feedparser.parse(replace_bad_char_refs(content))
    except Exception as exc:  # feedparser's fallback parsers raise on some hostile markup
        return [Rejection(source, f"not a readable feed: {type(exc).__name__}: {exc}")]
    if not parsed.entries:
        # bozo with nothing recovered is a broken document; a well-formed empty feed is not,
        # but it is still reported, so that an emptied feed does not pass unnoticed.
        if parsed.get("bozo") and not parsed.feed:
            exc = parsed.get("bozo_exception")
            return [Rejection(source, f"not a readable feed: {exc or 'unknown XML error'}")]
        return [Rejection(source, "feed has no entries")]
    feed = parsed.feed
    language = feed.get("language") or None
    outlet = html_to_text(feed.get("title", "")) or None
    items: list[RawItem | Rejection] = []
    for i, entry in enumerate(parsed.entries):
        title = html_to_text(entry.get("title", "") or "")
        body = _entry_body(entry)
        if not title and not body:
            items.append(Rejection(f"{source}#{i}", "feed entry has no title and no text"))
            continue
        items.append(
            RawItem(
                title=title,
                body=body,
                source=source,
                kind="article",
                outlet=outlet,
                url=_http_url(entry.get("link")),
                published=_entry_date(entry),
                author=entry.get("author") or None,
                declared_language=entry.get("language") or language,
                external_id=entry.get("id") or None,
            )
        )
    return items


def looks_like_feed_text(head: str) -> bool:
    """Cheap sniff on the first kilobytes of a document."""
    low = head[:2048].lstrip("\ufeff \t\r\n").lower()
    return bool(re.search(r"<(?:rss|feed|rdf:rdf)[\s>]", low))
