"""What a browser gets besides the API: offline docs, favicon, outlets, the article page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import RawItem
from akhbar.corpus.store import Store
from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

QUESTION = "Quelle capacité pour le data center de Dakhla ?"


@pytest.fixture(scope="module")
def client(sample_settings: Settings, engine: QAEngine) -> Iterator[TestClient]:
    s = sample_settings.model_copy(update={"rate_limit_per_minute": 0})
    with TestClient(create_app(s, engine)) as c:
        yield c


def _local_refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


# -- docs and favicon --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_this_servers_files(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    refs = _local_refs(page.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert "<script>" not in page.text and " on" not in page.text.replace(" one", "")
    for ref in refs:
        resp = client.get(ref)
        assert resp.status_code == 200, ref
        assert len(resp.content) > 100


def test_docs_assets_are_a_fixed_list(client: TestClient) -> None:
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    for name in ("core.py", "..%2F__init__.py", "favicon.png"):
        assert client.get(f"/docs-assets/{name}").status_code == 404


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, method in [("/v1/articles", "post"), ("/v1/index/rebuild", "post")]:
        assert spec["paths"][path][method]["security"] == [{"bearer": []}]
    # Optional on /v1/ask: needed only where the server sets AKHBAR_ASK_KEY.
    assert spec["paths"]["/v1/ask"]["post"]["security"] == [{}, {"bearer": []}]
    assert "security" not in spec["paths"]["/v1/outlets"]["get"]


def test_favicon(client: TestClient) -> None:
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/x-icon"
    assert resp.content[:4] == b"\x00\x00\x01\x00"  # the ICO header


# -- outlets -----------------------------------------------------------------------------------


def test_outlets_list_names_and_counts(client: TestClient, engine: QAEngine) -> None:
    outlets = client.get("/v1/outlets").json()
    by_name = {o["name"]: o["articles"] for o in outlets}
    # The sample's Wikinews records carry no outlet: it comes from their URLs.
    assert by_name["Wikinews (fr)"] >= 90
    assert by_name["Les ECO"] >= 1
    counts = [o["articles"] for o in outlets]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) <= engine.store.count_articles()


def test_outlet_filter_ignores_case(client: TestClient) -> None:
    for name in ("Les ECO", "les eco", "LES ECO"):
        resp = client.post("/v1/ask", json={"question": QUESTION, "outlets": [name]})
        passages = resp.json()["passages"]
        assert passages and {p["citation"]["outlet"] for p in passages} == {"Les ECO"}


def test_each_passage_says_whether_it_answers(client: TestClient) -> None:
    data = client.post("/v1/ask", json={"question": QUESTION, "k": 10}).json()
    flags = [p["answers"] for p in data["passages"]]
    assert data["answerable"] == any(flags)
    # The highlight is put forward on the passage with the answer, not on every one.
    assert flags[0] and not all(flags)
    kinds = {p["citation"]["kind"] for p in data["passages"]}
    assert kinds <= {"article", "headline"}


# -- the article page --------------------------------------------------------------------------


def test_article_page_marks_the_cited_passage_and_answer(client: TestClient) -> None:
    top = client.post("/v1/ask", json={"question": QUESTION}).json()["passages"][0]
    c, h = top["citation"], top["highlight"]
    url = (
        f"/articles/{c['article_id']}?start={c['start']}&end={c['end']}"
        f"&hs={h['start']}&he={h['end']}&ui=fr"
    )
    page = client.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert '<html lang="fr">' in html
    cited = re.search(
        r'<mark id="passage" class="cited">(.*?)<mark class="answer">(.*?)</mark>(.*?)</mark>',
        html,
        re.S,
    )
    assert cited, html[:2000]
    before, answer, after = (unescape(part) for part in cited.groups())
    assert before + answer + after == top["text"]
    assert answer == top["text"][h["start"] : h["end"]] and "500 MW" in answer
    assert "Lire à la source" not in html or "https://" in html
    assert "<script" not in html and "style=" not in html  # nothing the CSP would block


@pytest.mark.parametrize(
    "query", ["", "?start=5&end=2", "?start=0&end=99999999", "?start=0&end=10&hs=8&he=50"]
)
def test_article_page_without_a_usable_passage_still_shows_the_text(
    client: TestClient, engine: QAEngine, query: str
) -> None:
    article = next(engine.store.iter_articles())
    page = client.get(f"/articles/{article.id}{query}")
    assert page.status_code == 200
    if query.endswith("he=50"):
        assert 'class="cited"' in page.text and 'class="answer"' not in page.text
    elif query:
        assert 'class="cited"' not in page.text


def test_article_page_for_a_missing_article_is_a_404_page(client: TestClient) -> None:
    page = client.get("/articles/no-such-id", headers={"accept-language": "es-ES,es;q=0.9"})
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "Artículo no encontrado" in page.text
    assert client.get("/articles/x?start=-1&end=3").status_code == 422


def test_stored_markup_on_the_article_page_stays_text(
    fresh_home: Path,
    settings_for,
    encoder,
) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    settings = settings_for(fresh_home)
    with Store(settings.store_path) as store:
        ingest(
            store,
            [
                RawItem(
                    title=f"Titre {hostile}",
                    body=f"Premier paragraphe sur le port. {hostile} Fin du texte ici.",
                    source="t",
                    url="javascript:alert(3)",
                    outlet=f"Média {hostile}",
                    author="Jean Dupont",
                )
            ],
        )
        (article,) = [a for a in store.iter_articles() if a.title.startswith("Titre")]
    engine = QAEngine(settings, encoder)
    try:
        with TestClient(create_app(settings, engine)) as c:
            start = article.text.index("<script>")
            page = c.get(f"/articles/{article.id}?start={start}&end={start + 30}&hs=0&he=8")
    finally:
        engine.close()
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "javascript:" not in page.text  # the stored URL is not made a link


def test_page_asks_for_no_more_passages_than_the_server_takes(
    sample_settings: Settings, engine: QAEngine
) -> None:
    """The page sends k = min(10, max_k), read from the page the server wrote: a server
    with AKHBAR_MAX_K under 10 never gets a 422 from its own page."""
    s = sample_settings.model_copy(update={"rate_limit_per_minute": 0, "max_k": 3})
    with TestClient(create_app(s, engine)) as c:
        page = c.get("/").text
        assert '<meta name="akhbar-max-k" content="3">' in page
        assert c.post("/v1/ask", json={"question": QUESTION, "k": 3}).status_code == 200
        assert c.post("/v1/ask", json={"question": QUESTION, "k": 10}).status_code == 422
    with TestClient(create_app(sample_settings, engine)) as c:
        assert f'<meta name="akhbar-max-k" content="{sample_settings.max_k}">' in c.get("/").text
