"""The web page in headless Chromium against the app served by uvicorn."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.config import Settings
from service.qa import QAEngine

CHROMIUM = Path("/usr/bin/chromium")  # Debian package `chromium`
QUESTION = "Quelle capacité pour le data center de Dakhla ?"
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


def test_ask_from_the_page(base_url: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            locale="fr-FR",
        )
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(base_url + "/")
            # UI language follows navigator.language.
            assert page.locator("#submit").inner_text() == "Demander"

            page.fill("#question", QUESTION)
            page.click("#submit")
            first = page.locator("#results li").first
            first.wait_for()
            assert "500 MW" in first.locator("mark").inner_text()
            assert first.locator(".outlet").inner_text() == "Les ECO"
            assert first.locator("a.title").get_attribute("href")
            assert "fr" in page.locator("#status").inner_text()
            page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
            before = page.locator("#results").inner_text()

            # Only Spanish passages now.
            page.uncheck("input[name=lang][value=fr]")
            page.uncheck("input[name=lang][value=en]")
            status = page.locator("#status")
            page.click("#submit")
            page.wait_for_function(
                "() => !document.querySelector('#submit').disabled"
                " && !document.querySelector('#status').textContent.includes('…')"
            )
            after = page.locator("#results").inner_text()
            assert after != before
            langs = page.locator("#results .language").all_inner_texts()
            assert all(lang == "es" for lang in langs)
            if not langs:
                assert "Rien trouvé" in status.inner_text()
            page.screenshot(path=str(tmp_path / "spanish-only.png"), full_page=True)

            page.select_option("#ui-lang", "es")
            assert page.locator("#submit").inner_text() == "Preguntar"
            assert (tmp_path / "answer.png").stat().st_size > 0
        finally:
            context.close()
