"""A feed server on loopback for the feed tests: routes the test sets, real HTTP.

Articles come from the bundled sample (corpus/data/sample), so every item is a distinct
real news text that passes ingest's checks.
"""

from __future__ import annotations

import html
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "corpus/data/sample/frwikinews_2012.jsonl"

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[dict[str, str]], Reply]


@dataclass(frozen=True)
class Story:
    guid: str
    title: str
    body: str
    date: str | None

    @property
    def summary(self) -> str:
        """The first sentence: what a summary-only feed carries."""
        first = self.body.split(". ", 1)[0]
        return first[:200]


def stories() -> list[Story]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    return [
        Story(f"urn:akhbar-test:{r['id']}", r["title"], r["body"], r.get("date"))
        for r in rows
        if r.get("body") and len(r["body"]) > 900
    ]


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())


def rss(
    items: list[tuple[Story, str | None]], *, title: str = "Test RSS", ttl: int | None = None
) -> bytes:
    """RSS 2.0; each item is (story, link). With a link the description is the summary
    only (the page has the text); without, it is the whole text."""
    entries = []
    for story, link in items:
        text = html.escape(story.summary) if link else html.escape(_paragraphs(story.body))
        entries.append(
            f"<item><title>{html.escape(story.title)}</title>"
            f'<guid isPermaLink="false">{story.guid}</guid>'
            + (f"<link>{html.escape(link)}</link>" if link else "")
            + f"<description>{text}</description></item>"
        )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl is not None else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>http://example.org/</link>"
        f"<language>fr</language>{ttl_tag}{''.join(entries)}</channel></rss>"
    ).encode()


def atom(items: list[Story], *, title: str = "Test Atom") -> bytes:
    entries = "".join(
        f"<entry><title>{html.escape(s.title)}</title><id>{s.guid}</id>"
        "<updated>2012-06-01T00:00:00Z</updated>"
        f'<content type="html">{html.escape(_paragraphs(s.body))}</content></entry>'
        for s in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:lang="fr"><title>{html.escape(title)}</title><id>urn:test-atom</id>'
        f"<updated>2012-06-01T00:00:00Z</updated>{entries}</feed>"
    ).encode()


def page(story: Story) -> bytes:
    """An article page: navigation around the article, as a news site serves it."""
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(story.title)}</title></head><body>"
        '<nav><a href="/">Accueil</a> <a href="/monde">Monde</a></nav>'
        f"<article><h1>{html.escape(story.title)}</h1>{_paragraphs(story.body)}</article>"
        "<footer>Tous droits réservés</footer></body></html>"
    ).encode()


@dataclass
class Conditional:
    """A feed that answers 304 to the validators of its current version."""

    render: Callable[[], bytes]
    content_type: str = "application/rss+xml; charset=utf-8"
    version: int = 1
    full_responses: int = 0

    def change(self, render: Callable[[], bytes]) -> None:
        self.render = render
        self.version += 1

    def __call__(self, headers: dict[str, str]) -> Reply:
        etag = f'"v{self.version}"'
        modified = formatdate(1_700_000_000 + 3600 * self.version, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": modified}
        if headers.get("if-none-match") == etag or headers.get("if-modified-since") == modified:
            return 304, validators, b""
        self.full_responses += 1
        return 200, {"Content-Type": self.content_type, **validators}, self.render()


def fixed(
    status: int, body: bytes = b"", content_type: str = "text/plain", **headers: str
) -> Route:
    return lambda _h: (status, {"Content-Type": content_type, **headers}, body)


@dataclass
class FeedServer:
    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.hits if p == path)


@contextmanager
def serving() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.hits.append((self.path, headers))
            route = state.routes.get(self.path)
            status, reply_headers, body = route(headers) if route else (404, {}, b"not found")
            try:
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test): nothing to answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
