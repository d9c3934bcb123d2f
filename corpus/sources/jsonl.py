"""JSONL (one object per line) and JSON-array exports from other tools and datasets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from akhbar.corpus.dates import parse_date
from akhbar.corpus.models import RawItem
from akhbar.corpus.sources.rejection import Rejection

# First present, non-empty field wins.
_ID = ("id", "guid", "uid", "doc_id")
_TITLE = ("title", "headline", "titre", "titulo", "título")
_BODY = ("text", "body", "content", "article", "contenu", "texto", "description", "summary")
_LEAD = ("lead", "chapo", "chapeau", "standfirst", "subtitle", "entradilla")
_DATE = ("date", "published", "published_at", "pubDate", "datePublished", "publication_date")
_URL = ("url", "link", "url_guess", "permalink")
_OUTLET = ("outlet", "source", "site", "sitename", "publisher", "media")
_LANG = ("lang", "language", "langue", "idioma")
_AUTHOR = ("author", "authors", "byline", "auteur", "autor")
_KIND = ("kind", "type")

_NULLS = {"", "none", "null", "nan", "n/a"}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, list):
        parts = [t for v in value if (t := _text(v))]
        return ", ".join(parts) if parts else None
    if isinstance(value, Mapping):
        return _text(value.get("name") or value.get("title") or value.get("value"))
    text = str(value).strip()
    # Exports written by pandas/str() carry "None"/"nan" for missing values.
    return None if text.casefold() in _NULLS else text


def _first(obj: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        if key in obj and (value := _text(obj[key])):
            return value
    return None


def record_to_item(obj: Mapping[str, Any], source: str) -> RawItem | Rejection:
    """One export record → RawItem, or a Rejection saying what is missing."""
    title = _first(obj, _TITLE) or ""
    body = _first(obj, _BODY) or ""
    lead = _first(obj, _LEAD)
    if lead and not body.startswith(lead):
        body = f"{lead}\n\n{body}" if body else lead
    if not title and not body:
        return Rejection(source, "record has no title and no text")
    kind = _first(obj, _KIND)
    published_raw = _first(obj, _DATE)
    return RawItem(
        title=title,
        body=body,
        source=source,
        kind="headline" if kind == "headline" else "article",
        outlet=_first(obj, _OUTLET),
        url=_first(obj, _URL),
        published=parse_date(published_raw) if published_raw else None,
        author=_first(obj, _AUTHOR),
        declared_language=_first(obj, _LANG),
        external_id=_first(obj, _ID),
    )


def _loads(text: str) -> Any:
    """The parsed JSON, or a Rejection (with an empty source) saying why it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("", f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        return Rejection("", "invalid JSON: nested too deep")
    except ValueError as exc:  # e.g. an integer literal past Python's digit limit
        return Rejection("", f"invalid JSON: {exc}")


def _record(obj: Mapping[str, Any], where: str) -> RawItem | Rejection:
    try:
        return record_to_item(obj, where)
    except RecursionError:
        return Rejection(where, "record nested too deep")


def parse_jsonl(lines: Iterable[str], source: str) -> Iterator[RawItem | Rejection]:
    """Items from JSONL text; a bad line becomes a Rejection naming its line number."""
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        where = f"{source}:{lineno}"
        obj = _loads(stripped)
        if isinstance(obj, Rejection):
            yield Rejection(where, obj.reason)
        elif not isinstance(obj, dict):
            yield Rejection(where, f"expected a JSON object, got {type(obj).__name__}")
        else:
            yield _record(obj, where)


def parse_json_document(text: str, source: str) -> Iterator[RawItem | Rejection]:
    """A whole-file JSON export: an array of records, or an object holding one."""
    doc = _loads(text)
    if isinstance(doc, Rejection):
        if doc.reason.startswith("invalid JSON") and len(text.splitlines()) > 1:
            # Many ".json" exports are really JSONL.
            yield from parse_jsonl(text.splitlines(), source)
        else:
            yield Rejection(source, doc.reason)
        return
    if isinstance(doc, dict):
        records = next((v for v in doc.values() if isinstance(v, list)), [doc])
    elif isinstance(doc, list):
        records = doc
    else:
        yield Rejection(source, f"unexpected JSON {type(doc).__name__}")
        return
    for i, obj in enumerate(records):
        where = f"{source}#{i}"
        if isinstance(obj, dict):
            yield _record(obj, where)
        else:
            yield Rejection(where, f"expected a JSON object, got {type(obj).__name__}")
