"""Source readers: turn files, directories, URLs and feed lists into RawItems.

Nothing here raises for bad input: every problem becomes a ``Rejection`` so that the ingest
report accounts for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from corpus.models import RawItem
from corpus.sources.decoding import decode_bytes
from corpus.sources.feeds import looks_like_feed_text, parse_feed
from corpus.sources.fetch import Fetcher, FetchError
from corpus.sources.html import parse_html
from corpus.sources.jsonl import parse_json_document, parse_jsonl
from corpus.sources.rejection import Rejection
from corpus.sources.seed import parse_seed_page

__all__ = ["Rejection", "iter_sources", "parse_content"]

Item = RawItem | Rejection

_JSONL = {".jsonl", ".ndjson"}
_JSON = {".json"}
_FEED = {".xml", ".rss", ".atom", ".rdf"}
_HTML = {".html", ".htm", ".xhtml"}
_LIST = {".list", ".urls"}
_MAX_LIST_DEPTH = 3


def _is_url(target: str) -> bool:
    return urlsplit(target).scheme in ("http", "https")


def _kind_from_content_type(content_type: str | None) -> str | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/rss+xml", "application/atom+xml", "application/rdf+xml"):
        return "feed"
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    if media in ("application/x-ndjson", "application/jsonl", "application/jsonlines"):
        return "jsonl"
    if media == "application/json":
        return "json"
    return None


def _sniff(text: str) -> str:
    head = text[:4096].lstrip("\ufeff \t\r\n")
    low = head[:512].lower()
    if looks_like_feed_text(head):
        return "feed"
    if low.startswith(("<!doctype html", "<html")) or "<body" in head.lower():
        return "html"
    if low.startswith("<?xml"):
        return "feed"
    if low.startswith("{"):
        return "jsonl"
    if low.startswith("["):
        return "json"
    return "text"


def _kind_for(name: str, content_type: str | None, text: str) -> str:
    suffix = Path(urlsplit(name).path if _is_url(name) else name).suffix.lower()
    for suffixes, kind in (
        (_JSONL, "jsonl"),
        (_JSON, "json"),
        (_FEED, "feed"),
        (_HTML, "html"),
        (_LIST, "list"),
    ):
        if suffix in suffixes:
            return kind
    by_type = _kind_from_content_type(content_type)
    if by_type:
        return by_type
    # Unknown suffixes and ".txt" are read as what they hold (a saved feed, a page, text).
    return _sniff(text)


def parse_content(
    data: bytes,
    source: str,
    *,
    content_type: str | None = None,
    charset: str | None = None,
    url: str | None = None,
) -> list[Item]:
    """Items from one document's bytes; the format comes from name, content type or content."""
    text = decode_bytes(data, charset)
    kind = _kind_for(source, content_type, text)
    if kind == "list":
        raise ValueError("feed lists are expanded by iter_sources")
    if kind == "jsonl":
        return list(parse_jsonl(text.splitlines(), source))
    if kind == "json":
        return list(parse_json_document(text, source))
    if kind == "feed":
        # Decoded text, not bytes: the encoding fallbacks above beat feedparser's guesses.
        return parse_feed(_strip_xml_encoding(text), source)
    if kind == "html":
        return parse_html(text, source, url=url)
    items: list[Item] = list(parse_seed_page(text, source))
    return items or [Rejection(source, "no text found")]


def _strip_xml_encoding(text: str) -> str:
    # The XML declaration's encoding no longer applies once the text is decoded.
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip().startswith("<?xml"):
        end = text.find("?>")
        if end != -1:
            return '<?xml version="1.0"?>' + text[end + 2 :]
    return text


def _read_capped(path: Path, max_bytes: int) -> bytes | Rejection:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Rejection(str(path), f"file is {size} bytes, over the {max_bytes}-byte cap")
        with path.open("rb") as fh:
            # Read one byte past the cap: the file may have grown since stat().
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return Rejection(str(path), f"cannot read file: {exc.strerror or exc}")
    if len(data) > max_bytes:
        return Rejection(str(path), f"file grew past the {max_bytes}-byte cap while read")
    return data


def _walk(directory: Path) -> Iterator[Path]:
    # Sorted, hidden entries skipped, symlinked directories not followed (no loops).
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _from_path(path: Path, max_bytes: int) -> Iterator[Item]:
    data = _read_capped(path, max_bytes)
    if isinstance(data, Rejection):
        yield data
        return
    yield from parse_content(data, str(path))


def _from_url(url: str, fetcher: Fetcher) -> Iterator[Item]:
    try:
        result = fetcher.fetch(url)
    except FetchError as exc:
        yield Rejection(url, str(exc))
        return
    yield from parse_content(
        result.content,
        result.final_url,
        content_type=result.content_type,
        charset=result.charset,
        url=result.final_url,
    )


def _list_targets(path: Path, max_bytes: int) -> list[str] | Rejection:
    data = _read_capped(path, max_bytes)
    if isinstance(data, Rejection):
        return data
    targets = []
    for line in decode_bytes(data).splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not _is_url(entry) and not Path(entry).is_absolute():
            # Relative paths in a list are relative to the list file.
            entry = str(path.parent / entry)
        targets.append(entry)
    return targets


def iter_sources(
    targets: Sequence[str],
    *,
    fetcher: Fetcher | None = None,
    max_bytes: int = 10_000_000,
) -> Iterator[RawItem | Rejection]:
    """Every item (or rejection) from files, directories, URLs and feed lists, in order."""
    yield from _iter(targets, fetcher, max_bytes, depth=0, seen=set())


def _iter(
    targets: Sequence[str],
    fetcher: Fetcher | None,
    max_bytes: int,
    *,
    depth: int,
    seen: set[str],
) -> Iterator[Item]:
    for target in targets:
        if _is_url(target):
            if fetcher is None:
                fetcher = Fetcher(max_bytes=max_bytes)
            yield from _from_url(target, fetcher)
            continue
        path = Path(target)
        if path.is_dir():
            for file in _walk(path):
                yield from _dispatch_file(file, fetcher, max_bytes, depth=depth, seen=seen)
        elif path.exists():
            yield from _dispatch_file(path, fetcher, max_bytes, depth=depth, seen=seen)
        else:
            yield Rejection(target, "no such file or directory")


def _dispatch_file(
    path: Path,
    fetcher: Fetcher | None,
    max_bytes: int,
    *,
    depth: int,
    seen: set[str],
) -> Iterator[Item]:
    if path.suffix.lower() not in _LIST:
        yield from _from_path(path, max_bytes)
        return
    key = str(path.resolve())
    if key in seen or depth >= _MAX_LIST_DEPTH:
        yield Rejection(str(path), "feed list nested too deep or includes itself")
        return
    targets = _list_targets(path, max_bytes)
    if isinstance(targets, Rejection):
        yield targets
        return
    yield from _iter(targets, fetcher, max_bytes, depth=depth + 1, seen=seen | {key})
