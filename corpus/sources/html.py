"""Article web pages via trafilatura: main text without navigation, ads or comments."""

from __future__ import annotations

import re
from typing import Any

import trafilatura

from akhbar.corpus.dates import parse_date
from akhbar.corpus.models import RawItem
from akhbar.corpus.sources.rejection import Rejection

_HTML_LANG = re.compile(r"<html[^>]*\blang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)", re.I)
_OG_LOCALE = re.compile(
    r"<meta[^>]+property\s*=\s*[\"']og:locale[\"'][^>]+content\s*=\s*[\"']([A-Za-z_-]+)", re.I
)


def _declared_language(html: str) -> str | None:
    head = html[:8192]
    m = _HTML_LANG.search(head) or _OG_LOCALE.search(head)
    return m[1] if m else None


def _get(doc: Any, name: str) -> str | None:
    value = doc.get(name) if isinstance(doc, dict) else getattr(doc, name, None)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_html(html: str, source: str, url: str | None = None) -> list[RawItem | Rejection]:
    """One RawItem for the page's main article, or a Rejection if none is found."""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            favor_precision=True,
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on hostile markup
        return [Rejection(source, f"HTML extraction failed: {type(exc).__name__}: {exc}")]
    if doc is None:
        return [Rejection(source, "no article text found in HTML page")]
    body = _get(doc, "text") or ""
    title = _get(doc, "title") or ""
    if not body and not title:
        return [Rejection(source, "no article text found in HTML page")]
    first, _, rest = body.partition("\n")
    if title and first.strip() == title:
        # The <h1> is usually extracted as the first body line; the title is kept apart.
        body = rest.strip()
    published_raw = _get(doc, "date")
    page_url = url or _get(doc, "url")
    return [
        RawItem(
            title=title,
            body=body,
            source=source,
            kind="article",
            outlet=_get(doc, "sitename"),
            url=page_url if page_url and page_url.startswith(("http://", "https://")) else None,
            published=parse_date(published_raw) if published_raw else None,
            author=_get(doc, "author"),
            declared_language=_get(doc, "language") or _declared_language(html),
        )
    ]
