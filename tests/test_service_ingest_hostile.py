"""POST /v1/articles with hostile content, on the real app and engines: a report, never a 500."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import akhbar.service.routes.admin as admin_routes
from akhbar.corpus.sources.fetch import FetchError, FetchResult
from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

KEY = "admin-key-for-hostile-tests"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
RSS_HEAD = '<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>'
PAGES: dict[str, tuple[bytes, str]] = {
    "https://hostile.example/deep.jsonl": (b"[" * 50_000 + b"]" * 50_000, "application/jsonl"),
    "https://hostile.example/surrogate.rss": (
        f"{RSS_HEAD}<item><title>Le port &#xD800; rouvre</title></item></channel></rss>".encode(),
        "application/rss+xml",
    ),
    "https://hostile.example/empty.rss": (
        f"{RSS_HEAD}</channel></rss>".encode(),
        "application/rss+xml",
    ),
    "https://hostile.example/random": (random.Random(15).randbytes(20_000), "text/plain"),
}


class HostileFetcher:
    def __init__(self, **_: object) -> None:
        pass

    def fetch(self, url: str) -> FetchResult:
        if url not in PAGES:
            raise FetchError(f"HTTP 404 for {url}")
        content, content_type = PAGES[url]
        return FetchResult(url, url, content, content_type, None)


@pytest.fixture
def admin(
    fresh_home: Path,
    settings_for,
    encoder,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    monkeypatch.setattr(admin_routes, "fetcher", lambda _settings: HostileFetcher())
    settings: Settings = settings_for(fresh_home, admin_key=KEY)
    engine = QAEngine(settings, encoder)
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client
    finally:
        engine.close()


def test_hostile_urls_and_surrogates_get_a_report_not_a_500(admin: TestClient) -> None:
    # Raw JSON: lone surrogate escapes, as a broken exporter writes them.
    urls = ", ".join(f'"{u}"' for u in [*PAGES, "https://hostile.example/missing"])
    body = (
        '{"articles": [{"title": "Titre cass\\u00e9", "text": "Le corps \\udfff reste'
        ' intact et lisible."}], "urls": [' + urls + "]}"
    )
    resp = admin.post("/v1/articles", content=body.encode(), headers=AUTH)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    reasons = {r["source"]: r["reason"] for r in report["reasons"]}
    assert "nested too deep" in reasons["https://hostile.example/deep.jsonl:1"]
    assert reasons["https://hostile.example/empty.rss"] == "feed has no entries"
    assert "binary" in reasons["https://hostile.example/random"]
    assert reasons["https://hostile.example/missing"].startswith("HTTP 404")
    # The article and the feed entry are stored, each with one character replaced.
    assert (report["stored"], report["rejected"], report["total"]) == (2, 4, 6)
    store = admin.app.state.engine.store  # type: ignore[attr-defined]
    titles = {a.title: a.text for a in store.iter_articles() if "\ufffd" in f"{a.title}{a.text}"}
    assert titles == {
        "Titre cassé": "Le corps \ufffd reste intact et lisible.",
        "Le port \ufffd rouvre": "Le port \ufffd rouvre",
    }

    # A constrained field (title, outlet) is validated by the schema first: a clear 422.
    bad_title = '[{"title": "Titre \\ud800", "text": "Un texte."}]'
    resp = admin.post("/v1/articles", content=bad_title.encode(), headers=AUTH)
    assert resp.status_code == 422 and resp.json()["error"]["message"]
