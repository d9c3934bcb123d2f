"""RSS 2.0 / Atom feeds via feedparser, which recovers what it can from broken XML."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date
from typing import Any

import feedparser

from corpus.dates import parse_date
from corpus.models import RawItem
from corpus.sources.rejection import Rejection

_TAG = re.compile(r"<[^>]+>")
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
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
            except ValueError:
                continue
    for key in ("published", "updated", "created", "dc_date"):
        if entry.get(key) and (d := parse_date(entry[key])):
            return d
    return None


def _entry_body(entry: Any) -> str:
    contents = entry.get("content") or []
    best = max((c.get("value", "") for c in contents), key=len, default="")
    summary = entry.get("summary", "") or ""
    raw = best if len(best) >= len(summary) else summary
    return html_to_text(raw)


def parse_feed(content: bytes | str, source: str) -> list[RawItem | Rejection]:
    """Items of an RSS/Atom feed. An empty feed yields []; unrecoverable XML a Rejection."""
    parsed = feedparser.parse(content)
    if not parsed.entries:
        # bozo with nothing recovered is a broken document; a well-formed empty feed is not.
        if parsed.get("bozo") and not parsed.feed:
            exc = parsed.get("bozo_exception")
            return [Rejection(source, f"not a readable feed: {exc or 'unknown XML error'}")]
        return []
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
