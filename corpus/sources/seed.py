"""News-aggregator pages saved as text: a headline ticker, then one article.

Layout (see ``corpus/data/sample/seed_page.txt``): line 1 holds many headlines separated by
runs of spaces; widget boilerplate follows; then the article title, a byline such as
"Publié dans Les ECO le 13 - 01 - 2026" (or "Publicado en X el ..."), body paragraphs, an
optional "Author / Outlet" signature and a "read at the source" link.
"""

from __future__ import annotations

import re

from akhbar.corpus.dates import parse_date
from akhbar.corpus.models import RawItem

_TICKER_SPLIT = re.compile(r"[ \t\u00a0]{2,}|\t")
_MIN_TICKER_HEADLINES = 3

_BOILERPLATE = re.compile(
    r"""^(?:
        merci\s+d.avoir\s+signal[ée].*
      | cette\s+image\s+sera\s+automatiquement\s+bloqu[ée]e.*
      | cliquez\s+ici\s+pour\s+lire\s+l.article.*
      | lire\s+(?:aussi|la\s+suite|l.article).*
      | haga\s+clic\s+aqu[ií].*
      | pulse\s+aqu[ií].*
      | gracias\s+por\s+(?:informar|reportar|avisar).*
      | esta\s+imagen\s+ser[aá]\s+bloqueada.*
      | (?:leer|lea)\s+(?:m[aá]s|tambi[eé]n|el\s+art[ií]culo).*
      | click\s+here\s+to\s+read.*
      | thanks?\s+(?:you\s+)?for\s+reporting.*
      | read\s+(?:more|the\s+full\s+article).*
      | partager(?:\s+sur.*)?|compartir(?:\s+en.*)?|share(?:\s+on.*)?
      | publicit[ée]|publicidad|advertisement
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_BYLINE = re.compile(
    r"^(?:Publi[ée]e?\s+dans|Publicado\s+en|Published\s+in)\s+(?P<outlet>.+?)\s+"
    r"(?:le|el|on)\s+(?P<date>.*\d{4}.*)$",
    re.IGNORECASE,
)
_NAME = r"[A-ZÀ-Ý][\w'’.-]+(?:\s+(?:de|del|la|el|ben|bin|van|von|d['’])?\s*[A-ZÀ-Ý][\w'’.-]+){1,3}"
_SIGNATURE = re.compile(rf"^(?P<author>{_NAME})\s*/\s*(?P<outlet>.{{2,60}})$")
_BY = re.compile(rf"^(?:Par|Por|By)\s*:?\s+(?P<author>{_NAME})\s*$")


def _is_boilerplate(line: str) -> bool:
    return bool(_BOILERPLATE.match(line.strip()))


def _ticker_headlines(line: str) -> list[str]:
    parts = [p.strip() for p in _TICKER_SPLIT.split(line)]
    return [p for p in parts if p and not _is_boilerplate(p)]


def _author(line: str) -> str | None:
    m = _SIGNATURE.match(line) or _BY.match(line)
    return m["author"].strip() if m else None


def parse_seed_page(text: str, source: str) -> list[RawItem]:
    """Ticker headlines (kind="headline") then the page's article, if there is one."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    items: list[RawItem] = []
    start = 0
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        return items
    headlines = _ticker_headlines(lines[first])
    if len(headlines) >= _MIN_TICKER_HEADLINES:
        items.extend(RawItem(title=h, body=h, source=source, kind="headline") for h in headlines)
        start = first + 1

    content = [ln.strip() for ln in lines[start:] if ln.strip() and not _is_boilerplate(ln)]
    if not content:
        return items

    outlet = published = author = None
    byline_at = next((i for i, ln in enumerate(content) if _BYLINE.match(ln)), None)
    if byline_at is not None:
        m = _BYLINE.match(content[byline_at])
        assert m is not None
        outlet = m["outlet"].strip()
        published = parse_date(m["date"])
        # The title is the line just above the byline; anything further up is page chrome.
        title = content[byline_at - 1] if byline_at > 0 else ""
        body_lines = content[byline_at + 1 :]
    else:
        title, body_lines = content[0], content[1:]

    if body_lines:
        author = _author(body_lines[-1])
        if author:
            body_lines = body_lines[:-1]
        elif len(body_lines) > 1 and (author := _author(body_lines[0])):
            body_lines = body_lines[1:]
    if not title and not body_lines:
        return items
    items.append(
        RawItem(
            title=title,
            body="\n\n".join(body_lines),
            source=source,
            kind="article",
            outlet=outlet,
            published=published,
            author=author,
        )
    )
    return items


def looks_like_aggregator_page(text: str) -> bool:
    """A headline ticker on the first line, or a "Publié dans X le DATE" byline.

    Directory walks read a ``.txt`` file only when this holds: most text files lying in a
    news folder (notes, READMEs, licences) are not articles.
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    first = next((ln for ln in lines if ln), None)
    if first is None:
        return False
    if len(_ticker_headlines(first)) >= _MIN_TICKER_HEADLINES:
        return True
    return any(_BYLINE.match(ln) for ln in lines[:200])
