"""The web page in headless Chromium against the app served by uvicorn, at desktop and phone
widths. The screenshots it takes are the README's pictures (docs/screenshots)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")  # Debian package `chromium`
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
QUESTION = "Quelle capacité pour le data center de Dakhla ?"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium waits on network services that a closed machine never answers.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DONE = (
    "() => !document.querySelector('#submit').disabled"
    " && !document.querySelector('#status').textContent.includes('…')"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(sample_settings: Settings, engine: QAEngine) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    app = create_app(sample_settings.model_copy(update={"rate_limit_per_minute": 0}), engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # -> playwright BrowserContext
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium") / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            locale="fr-FR",
            viewport=DESKTOP,
        )
        try:
            yield context
        finally:
            context.close()


def _page(browser, viewport: dict, problems: list[str]):
    page = browser.new_page()
    page.set_viewport_size(viewport)
    page.set_default_timeout(30_000)
    # A CSP violation or a failed load (favicon, a script) shows up as a console error.
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page


def _ask(page, question: str) -> None:
    page.fill("#question", question)
    page.click("#submit")
    page.wait_for_function(DONE)


def test_answer_cards_article_page_and_states(base_url: str, browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page = _page(browser, DESKTOP, problems)
    page.goto(base_url + "/")
    # UI language follows navigator.language.
    assert page.locator("#submit").inner_text() == "Demander"
    # The outlet filter offers the corpus's outlets.
    page.wait_for_function("() => document.querySelectorAll('#outlet-list option').length > 1")
    offered = page.locator("#outlet-list option").evaluate_all("os => os.map(o => o.value)")
    assert "Les ECO" in offered and "Wikinews (fr)" in offered

    _ask(page, QUESTION)
    # The best answer sentence on top, with its citation.
    answer = page.locator("#answer")
    assert answer.is_visible()
    assert "500 MW" in answer.locator("blockquote").inner_text()
    assert answer.locator("a.title").get_attribute("href").startswith("/articles/")
    # One card per article; the highlight only where the passage answers.
    cards = page.locator("#results li.result")
    ids = cards.evaluate_all("cs => cs.map(c => c.dataset.articleId)")
    assert ids and len(ids) == len(set(ids))
    first = cards.first
    assert "500 MW" in first.locator(".passage mark").first.inner_text()
    assert first.locator(".outlet").inner_text() == "Les ECO"
    marks_outside = page.locator("#results .passage:not(.answers) mark").count()
    assert marks_outside == 0
    assert page.locator("#results .passage").count() > page.locator("#results mark").count()
    assert "fr" in page.locator("#status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "answer-desktop.png"), full_page=True)
    folds = page.locator("#results details.more")
    if folds.count():
        assert not folds.first.locator(".passage").first.is_visible()
        folds.first.locator("summary").click()
        assert folds.first.locator(".passage").first.is_visible()

    # While the next answer is on its way the old one is dimmed; after an error it is gone.
    pending = []
    page.route("**/v1/ask", lambda route: pending.append(route))
    page.fill("#question", "Qui a gagné la finale ?")
    page.click("#submit")
    page.wait_for_function("() => document.querySelector('#results').classList.contains('stale')")
    assert page.locator("#submit").is_disabled()
    deadline = time.monotonic() + 10
    while not pending and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    pending[0].fulfill(
        status=503,
        content_type="application/json",
        body='{"error": {"code": "no_index", "message": "pas d\'index", "request_id": "x"}}',
    )
    page.wait_for_function(DONE)
    assert page.locator("#results li").count() == 0 and not answer.is_visible()
    assert "pas d'index" in page.locator("#status").inner_text()
    assert "stale" not in (page.locator("#results").get_attribute("class") or "")
    page.unroute("**/v1/ask")
    # The browser logs the 503 it was given; that one was asked for.
    assert all("503" in p for p in problems), problems
    problems.clear()

    # A citation opens the article page, the cited passage marked and scrolled into view.
    _ask(page, QUESTION)
    answer.locator("a.title").click()
    page.wait_for_url("**/articles/**")
    cited = page.locator("mark#passage")
    assert "500 MW" in cited.locator("mark.answer").inner_text()
    top = cited.evaluate("m => m.getBoundingClientRect().top")
    assert 0 <= top < DESKTOP["height"]
    assert page.evaluate("() => window.scrollY") > 0
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=str(SCREENSHOTS / "article-desktop.png"))
    page.go_back()

    # Wikinews items name their outlet (from the URL); ticker headlines say what is missing.
    _ask(page, "Lancement de la capsule Dragon par SpaceX vers l'ISS")
    outlets = page.locator("#results .outlet").all_inner_texts()
    assert "Wikinews (fr)" in outlets
    _ask(page, "Renault Maroc production exportée en 2025")
    assert page.locator("#results .aggregator").count() >= 1
    assert "agrégateur" in page.locator("#results .aggregator").first.inner_text()
    assert "média inconnu" not in page.locator("#results").inner_text()

    # Only Spanish passages now.
    before = page.locator("#results").inner_text()
    page.uncheck("input[name=lang][value=fr]")
    page.uncheck("input[name=lang][value=en]")
    _ask(page, QUESTION)
    assert page.locator("#results").inner_text() != before
    langs = page.locator("#results .language").all_inner_texts()
    assert all(lang == "es" for lang in langs)
    if not langs:
        assert "Rien trouvé" in page.locator("#status").inner_text()
    page.select_option("#ui-lang", "es")
    assert page.locator("#submit").inner_text() == "Preguntar"
    page.select_option("#ui-lang", "fr")
    page.close()
    assert not problems, problems


def test_phone_width(base_url: str, browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page = _page(browser, PHONE, problems)
    page.goto(base_url + "/")
    page.evaluate("() => localStorage.setItem('akhbar.uiLang', 'fr')")
    page.reload()
    _ask(page, QUESTION)
    assert page.locator("#results li.result").count() >= 1
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(SCREENSHOTS / "answer-phone.png"), full_page=True)
    page.locator("#answer a.title").click()
    page.wait_for_url("**/articles/**")
    top = page.locator("mark#passage").evaluate("m => m.getBoundingClientRect().top")
    assert 0 <= top < PHONE["height"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(SCREENSHOTS / "article-phone.png"))
    page.close()
    assert not problems, problems


def test_api_docs_work_offline(base_url: str, browser) -> None:
    problems: list[str] = []
    page = _page(browser, DESKTOP, problems)
    page.goto(base_url + "/docs")
    # Swagger UI rendered from local files, with an Authorize button for the bearer key.
    page.locator("button.authorize").wait_for()
    assert page.locator(".opblock-summary-path", has_text="/v1/outlets").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "docs-desktop.png"))
    page.goto(base_url + "/redoc")
    page.locator("h1", has_text="Akhbar").first.wait_for()
    page.close()
    # ReDoc may warn about what the CSP keeps out (workers); nothing may fail to load.
    assert not [p for p in problems if "Failed to load" in p or "404" in p], problems
