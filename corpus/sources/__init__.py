"""Source readers: turn files, directories, URLs and feed lists into RawItems.

Nothing here raises for bad input: every problem becomes a ``Rejection`` so that the ingest
report accounts for it, and the next file is read. A parser that fails half-way keeps the
items it produced before the failure.

Directory walks are narrower than named files: they read only the article formats below
(and a ``.txt`` only when it looks like an aggregator page), pass over everything else as
``Skipped``, never expand feed lists, and never read through a symlink that leaves the
directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from akhbar.corpus.models import RawItem
from akhbar.corpus.sources.decoding import Decoded, binary_reason, decode, text_problem
from akhbar.corpus.sources.feeds import looks_like_feed_text, parse_feed
from akhbar.corpus.sources.fetch import Fetcher, FetchError
from akhbar.corpus.sources.html import parse_html
from akhbar.corpus.sources.jsonl import parse_json_document, parse_jsonl
from akhbar.corpus.sources.rejection import Rejection, Skipped
from akhbar.corpus.sources.seed import looks_like_aggregator_page, parse_seed_page

__all__ = ["Rejection", "Skipped", "iter_sources", "parse_content", "parse_feed_document"]

Item = RawItem | Rejection
Walked = RawItem | Rejection | Skipped

_JSONL = {".jsonl", ".ndjson"}
_JSON = {".json"}
_FEED = {".xml", ".rss", ".atom", ".rdf"}
_HTML = {".html", ".htm", ".xhtml"}
_LIST = {".list", ".urls"}
_TEXT = {".txt"}
# What a directory walk reads (plus aggregator-page .txt files).
_WALKED = _JSONL | _JSON | _FEED | _HTML
_MAX_LIST_DEPTH = 3
_MAX_REASON_CHARS = 300


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
    """Items from one document's bytes; the format comes from name, content type or content.

    Never raises for what the bytes hold: binary or undecodable data, and any parser
    failure, come back as a Rejection naming the source.
    """
    decoded = decode(data, charset)
    problem = binary_reason(data, decoded)
    if problem:
        return [Rejection(source, problem)]
    kind = _kind_for(source, content_type, decoded.text)
    if kind in ("text", "html"):
        # One document, one article: its text is judged whole. Structured formats are
        # judged record by record at ingest, so one bad record does not cost the file.
        problem = text_problem(decoded.text)
        if problem:
            return [Rejection(source, problem)]
    if kind == "list":
        return [Rejection(source, "a feed list is read only from a local file named directly")]
    return _parse(decoded, kind, source, url)


def parse_feed_document(data: bytes, source: str, *, charset: str | None = None) -> list[Item]:
    """Items of a document read as RSS/Atom whatever it looks like: a subscribed feed's
    URL that answers with an HTML page or garbage yields a Rejection, never an article."""
    decoded = decode(data, charset)
    problem = binary_reason(data, decoded)
    if problem:
        return [Rejection(source, problem)]
    return _parse(decoded, "feed", source, None)


def _parse(decoded: Decoded, kind: str, source: str, url: str | None) -> list[Item]:
    items: list[Item] = []
    try:
        # Extended item by item: a lazy parser failing half-way keeps what came before.
        items.extend(_parser(decoded.text, kind, source, url))
    except Exception as exc:
        # Parsers handle the failures they know; this catches the ones nobody foresaw
        # (library bugs on hostile markup) so one document never ends a run.
        items.append(Rejection(source, _reason(f"{kind} parser failed", exc)))
    if not items:
        what = "no text found" if kind == "text" else f"no items found in {kind} document"
        return [Rejection(source, what)]
    return items


def _parser(text: str, kind: str, source: str, url: str | None) -> Iterable[Item]:
    if kind == "jsonl":
        return parse_jsonl(text.splitlines(), source)
    if kind == "json":
        return parse_json_document(text, source)
    if kind == "feed":
        # Decoded text, not bytes: the encoding fallbacks above beat feedparser's guesses.
        return parse_feed(_strip_xml_encoding(text), source)
    if kind == "html":
        return parse_html(text, source, url=url)
    return parse_seed_page(text, source)


def _reason(what: str, exc: BaseException) -> str:
    detail = f"{what}: {type(exc).__name__}: {exc}"
    if len(detail) > _MAX_REASON_CHARS:
        detail = detail[: _MAX_REASON_CHARS - 1] + "…"
    return detail


def _strip_xml_encoding(text: str) -> str:
    # The XML declaration's encoding no longer applies once the text is decoded.
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip().startswith("<?xml"):
        end = text.find("?>")
        if end != -1:
            return '<?xml version="1.0"?>' + text[end + 2 :]
    return text


def _read_capped(
    path: Path, max_bytes: int, *, named: bool, nofollow: bool = False
) -> bytes | Rejection:
    # O_NONBLOCK: opening a FIFO must not hang the run; O_NOFOLLOW (walks): the file checked
    # to lie inside the directory cannot be swapped for a link between check and open.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                return Rejection(str(path), "not a regular file", unreadable=named)
            if info.st_size > max_bytes:
                return Rejection(
                    str(path), f"file is {info.st_size} bytes, over the {max_bytes}-byte cap"
                )
            # Read one byte past the cap: the file may have grown since fstat().
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return Rejection(str(path), f"cannot read file: {exc.strerror or exc}", unreadable=named)
    if len(data) > max_bytes:
        return Rejection(str(path), f"file grew past the {max_bytes}-byte cap while read")
    return data


def _walk(directory: Path, max_bytes: int) -> Iterator[Walked]:
    """Files of a named directory, sorted; hidden entries and unknown formats skipped."""
    try:
        root = directory.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        yield Rejection(str(directory), _reason("cannot read directory", exc), unreadable=True)
        return
    errors: list[OSError] = []
    for dirpath, dirs, files in os.walk(directory, followlinks=False, onerror=errors.append):
        while errors:
            yield _walk_error(errors.pop(0), directory)
        here = Path(dirpath)
        kept = []
        for name in sorted(d for d in dirs if not d.startswith(".")):
            if (here / name).is_symlink():
                # Not descended into: no loops, no way out; what lies inside is walked anyway.
                yield Skipped(str(here / name), "symlinked directory not followed")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if not name.startswith("."):
                try:
                    yield from _walked_file(here / name, root, directory, max_bytes)
                except Exception as exc:  # one file's failure never skips the next files
                    yield Rejection(str(here / name), _reason("cannot read file", exc))
    for error in errors:
        yield _walk_error(error, directory)


def _walk_error(error: OSError, directory: Path) -> Rejection:
    where = str(error.filename or directory)
    return Rejection(
        where,
        f"cannot read directory: {error.strerror or error}",
        unreadable=Path(where) == directory,
    )


def _walked_file(path: Path, root: Path, directory: Path, max_bytes: int) -> Iterator[Walked]:
    suffix = path.suffix.lower()
    if suffix in _LIST:
        yield Skipped(str(path), "feed lists are read only when named, not from a directory")
        return
    if suffix not in _WALKED and suffix not in _TEXT:
        yield Skipped(str(path), f"not a format read from directories ({suffix or 'no suffix'})")
        return
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        yield Rejection(str(path), _reason("cannot read file", exc))
        return
    if not target.is_relative_to(root):
        yield Rejection(str(path), f"symlink leads outside {directory}: not read")
        return
    data = _read_capped(target, max_bytes, named=False, nofollow=True)
    if isinstance(data, Rejection):
        yield Rejection(str(path), data.reason)
        return
    if suffix in _TEXT:
        decoded = decode(data)
        problem = binary_reason(data, decoded) or text_problem(decoded.text)
        if problem:
            yield Rejection(str(path), problem)
        elif looks_like_aggregator_page(decoded.text):
            yield from _parse(decoded, "text", str(path), None)
        else:
            yield Skipped(str(path), "text file that is not an aggregator page")
        return
    yield from parse_content(data, str(path))


def _from_path(path: Path, max_bytes: int, *, named: bool) -> Iterator[Item]:
    data = _read_capped(path, max_bytes, named=named)
    if isinstance(data, Rejection):
        yield data
        return
    yield from parse_content(data, str(path))


def _from_url(url: str, fetcher: Fetcher, *, named: bool) -> Iterator[Item]:
    try:
        result = fetcher.fetch(url)
    except FetchError as exc:
        yield Rejection(url, str(exc), unreadable=named)
        return
    yield from parse_content(
        result.content,
        result.final_url,
        content_type=result.content_type,
        charset=result.charset,
        url=result.final_url,
    )


def _list_targets(path: Path, max_bytes: int, *, named: bool) -> list[str] | Rejection:
    data = _read_capped(path, max_bytes, named=named)
    if isinstance(data, Rejection):
        return data
    decoded = decode(data)
    problem = binary_reason(data, decoded)
    if problem:
        return Rejection(str(path), f"feed list: {problem}")
    targets = []
    for line in decoded.text.splitlines():
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
) -> Iterator[Walked]:
    """Every item, rejection or skipped file from files, directories, URLs and feed lists.

    A Rejection with ``unreadable`` set means one of ``targets`` itself could not be read.
    """
    yield from _iter(targets, fetcher, max_bytes, depth=0, seen=set())


def _iter(
    targets: Sequence[str],
    fetcher: Fetcher | None,
    max_bytes: int,
    *,
    depth: int,
    seen: set[str],
) -> Iterator[Walked]:
    named = depth == 0
    for target in targets:
        try:
            if _is_url(target):
                if fetcher is None:
                    fetcher = Fetcher(max_bytes=max_bytes)
                yield from _from_url(target, fetcher, named=named)
                continue
            path = Path(target)
            if path.is_dir():
                yield from _walk(path, max_bytes)
            elif path.exists() or path.is_symlink():
                yield from _dispatch_file(path, fetcher, max_bytes, depth=depth, seen=seen)
            else:
                yield Rejection(target, "no such file or directory", unreadable=named)
        except Exception as exc:
            # Whatever went wrong with one target (a filesystem error mid-walk, a fetcher
            # bug) is that target's rejection; the next target is still read.
            yield Rejection(target, _reason("cannot read", exc), unreadable=named)


def _dispatch_file(
    path: Path,
    fetcher: Fetcher | None,
    max_bytes: int,
    *,
    depth: int,
    seen: set[str],
) -> Iterator[Walked]:
    named = depth == 0
    if path.suffix.lower() not in _LIST:
        yield from _from_path(path, max_bytes, named=named)
        return
    key = str(path.resolve())
    if key in seen or depth >= _MAX_LIST_DEPTH:
        yield Rejection(str(path), "feed list nested too deep or includes itself")
        return
    targets = _list_targets(path, max_bytes, named=named)
    if isinstance(targets, Rejection):
        yield targets
        return
    if not targets:
        yield Rejection(str(path), "feed list names no sources")
        return
    yield from _iter(targets, fetcher, max_bytes, depth=depth + 1, seen=seen | {key})
