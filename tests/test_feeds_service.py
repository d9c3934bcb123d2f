"""Feeds from the outside: `akhbar feeds` and `akhbar watch`, the /v1/feeds admin routes,
and the poller beside the server (`serve --watch`) with its metrics.

Feed subscriptions need no model or index: the app here is given an engine that holds
the store only, as the schema test does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from feed_server import Conditional, FeedServer, fixed, rss, serving, stories
from typer.testing import CliRunner, Result

from akhbar.corpus.poller import new_feed
from akhbar.corpus.store import Store
from akhbar.service.app import create_app
from akhbar.service.cli import app as cli
from akhbar.service.cli.feeds import background_poller
from akhbar.settings import Settings

STORIES = stories()
KEY = "feeds-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    # The CLI configures logging and two environment variables for its process.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    env = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as s:
        s.routes["/rss"] = Conditional(lambda: rss([(s_, None) for s_ in STORIES[:3]]))
        s.routes["/500"] = fixed(500, b"down")
        yield s


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AKHBAR_HOME", str(tmp_path))
    monkeypatch.setenv("AKHBAR_FEEDS__TIMEOUT_S", "5")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def articles(home: Path) -> set[str]:
    with Store(home / "akhbar.sqlite3") as store:
        return {a.title for a in store.iter_articles()}


# -- the command line ----------------------------------------------------------------------


def test_cli_refuses_a_loopback_feed_without_the_opt_in(home: Path, server: FeedServer):
    result = run("feeds", "add", server.url("/rss"))
    assert result.exit_code == 1
    assert "loopback" in result.output and "AKHBAR_ALLOW_PRIVATE_URLS=1" in result.output
    assert "no feed subscriptions" in run("feeds", "list").output


def test_cli_subscribes_watches_and_unsubscribes(
    home: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AKHBAR_ALLOW_PRIVATE_URLS", "1")
    url = server.url("/rss")
    added = run("feeds", "add", url, "--outlet", "Le Fil", "--every", "30m")
    assert added.exit_code == 0, added.output
    assert "every 30m as Le Fil" in added.output

    for args, message in [
        ((url,), "already subscribed"),
        ((server.url("/x"), "--every", "15"), "not a number and a unit"),
        ((server.url("/x"), "--every", "10s"), "from 1m to 7d"),
        (("ftp://example.org/feed",), "only http and https"),
        (("http://169.254.169.254/latest/",), "metadata"),
    ]:
        result = run("feeds", "add", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)

    (listed,) = json.loads(run("feeds", "list", "--json").output)
    assert listed["url"] == url and listed["every"] == "30m" and listed["last_success"] == "-"

    watched = run("watch", "--once")
    assert watched.exit_code == 0, watched.output
    assert f"{url}: ok, 3 new" in watched.output
    assert articles(home) == {s.title for s in STORIES[:3]}
    # Nothing is due for another 30 minutes.
    assert "no feed is due" in run("watch", "--once").output

    (listed,) = json.loads(run("feeds", "list", "--json").output)
    assert listed["last_outcome"] == "ok" and listed["total_new_items"] == 3
    assert listed["last_success"] != "-" and listed["last_error"] is None
    table = run("feeds", "list").output
    assert f"{url} (Le Fil), every 30m" in table and "new 3 (total 3)" in table

    assert run("feeds", "remove", url).exit_code == 0
    gone = run("feeds", "remove", url)
    assert gone.exit_code == 1 and "no feed subscription" in gone.output
    assert articles(home) == {s.title for s in STORIES[:3]}  # the articles stay


def test_watch_once_reports_a_failing_feed_and_lands_the_others(
    home: Path, server: FeedServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AKHBAR_ALLOW_PRIVATE_URLS", "1")
    assert run("watch", "--once").exit_code == 1  # nothing to watch yet
    for path in ("/500", "/rss"):
        assert run("feeds", "add", server.url(path)).exit_code == 0
    result = run("watch", "--once")
    assert result.exit_code == 1
    assert f"{server.url('/500')}: error: HTTP 500" in result.output
    assert f"{server.url('/rss')}: ok, 3 new" in result.output
    assert articles(home) == {s.title for s in STORIES[:3]}
    table = run("feeds", "list").output
    assert "HTTP 500" in table and "(1 in a row)" in table


def test_feed_commands_have_plain_help():
    for args in (("feeds", "add"), ("feeds", "list"), ("feeds", "remove"), ("watch",)):
        out = run(*args, "--help").output
        assert "<bool>" not in out and "``" not in out, args
    assert "--watch" in run("serve", "--help").output


# -- the admin routes ----------------------------------------------------------------------


class StoreOnlyEngine:
    """The engine as the feed routes use it: its store (no model, no index)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def ready(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def add_index_listener(self, listener: object) -> None:
        pass  # no index to follow

    def delta_status(self) -> None:
        return None


def client_for(settings: Settings) -> Iterator[TestClient]:
    with Store(settings.store_path) as store:
        app = create_app(settings, StoreOnlyEngine(store))  # type: ignore[arg-type]
        with TestClient(app) as client:
            yield client


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    yield from client_for(Settings(home=tmp_path, admin_key=KEY, allow_private_urls=True))


def test_feed_routes_need_the_admin_key(tmp_path: Path):
    settings = Settings(home=tmp_path, admin_key=KEY, ask_key="ask-key")
    for client in client_for(settings):
        assert client.get("/v1/feeds").status_code == 401
        asking = {"Authorization": "Bearer ask-key"}
        assert client.get("/v1/feeds", headers=asking).status_code == 403
        body = {"url": "https://example.org/rss"}
        assert client.post("/v1/feeds", json=body, headers=asking).status_code == 403
        assert client.get("/v1/feeds", headers=AUTH).json() == {"feeds": []}


def test_feed_routes_subscribe_list_and_remove(api: TestClient, server: FeedServer):
    url = server.url("/rss")
    created = api.post(
        "/v1/feeds", json={"url": url, "every": "2h", "outlet": " Le  Fil "}, headers=AUTH
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == url and body["every"] == "2h" and body["outlet"] == "Le Fil"
    assert body["last_success"] is None and body["failures"] == 0

    again = api.post("/v1/feeds", json={"url": url}, headers=AUTH)
    assert again.status_code == 409 and "already subscribed" in again.json()["error"]["message"]
    for bad, message in [
        ({"url": url + "?2", "every": "soon"}, "not a number and a unit"),
        ({"url": "file:///etc/passwd"}, "only http and https"),
        ({"url": "http://["}, "not a URL"),
        (b'{"url": "http://example.org/\\ud800"}', "valid string"),  # a lone surrogate
        ({"url": "https://example.org/rss", "outlet": "x\x00y"}, "control character"),
        ({"url": "https://example.org/rss", "colour": "red"}, "colour"),
        ({}, "url"),
    ]:
        if isinstance(bad, bytes):
            headers = {**AUTH, "Content-Type": "application/json"}
            resp = api.post("/v1/feeds", content=bad, headers=headers)
        else:
            resp = api.post("/v1/feeds", json=bad, headers=AUTH)
        assert resp.status_code == 422, (bad, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "invalid_request" and message in error["message"], (bad, error)

    (listed,) = api.get("/v1/feeds", headers=AUTH).json()["feeds"]
    assert listed["url"] == url and listed["every"] == "2h"

    gone = api.delete("/v1/feeds", params={"url": url}, headers=AUTH)
    assert gone.status_code == 200 and gone.json() == {"url": url, "deleted": True}
    assert api.delete("/v1/feeds", params={"url": url}, headers=AUTH).status_code == 404
    assert api.get("/v1/feeds", headers=AUTH).json() == {"feeds": []}


def test_feed_route_refuses_private_addresses_without_the_opt_in(
    tmp_path: Path, server: FeedServer
):
    for client in client_for(Settings(home=tmp_path, admin_key=KEY)):
        resp = client.post("/v1/feeds", json={"url": server.url("/rss")}, headers=AUTH)
        assert resp.status_code == 422
        assert "AKHBAR_ALLOW_PRIVATE_URLS" in resp.json()["error"]["message"]
        assert client.get("/v1/feeds", headers=AUTH).json() == {"feeds": []}
    assert server.hits == []


# -- serve --watch: the poller beside the server, on its metrics ---------------------------


def test_the_server_process_polls_and_reports_feed_metrics(tmp_path: Path, server: FeedServer):
    settings = Settings(home=tmp_path, admin_key=KEY, allow_private_urls=True)
    for client in client_for(settings):
        for path in ("/rss", "/500"):
            assert (
                client.post("/v1/feeds", json={"url": server.url(path)}, headers=AUTH).status_code
                == 201
            )
        metrics = client.app.state.metrics  # type: ignore[attr-defined]
        with background_poller(settings, metrics.observe_feed_poll):
            for _ in range(200):
                feeds = client.get("/v1/feeds", headers=AUTH).json()["feeds"]
                if all(f["last_outcome"] for f in feeds):
                    break
                time.sleep(0.05)
        text = client.get("/metrics").text
        assert 'akhbar_feed_polls_total{outcome="ok"} 1.0' in text
        assert 'akhbar_feed_polls_total{outcome="error"} 1.0' in text
        assert 'akhbar_feed_items_total{outcome="stored"} 3.0' in text
        assert "akhbar_feed_lag_seconds_count 2.0" in text
    assert articles(tmp_path) == {s.title for s in STORIES[:3]}


@pytest.mark.slow
def test_serve_watch_polls_in_the_server_process(tmp_path: Path, settings_for, server: FeedServer):
    """`akhbar serve --watch` as shipped: a real server process with the built model."""
    home = tmp_path / "home"
    settings_for(home)  # the session's built model, linked into this home
    with Store(home / "akhbar.sqlite3") as store:
        assert store.add_feed(new_feed(server.url("/rss"), None, 900.0, time.time()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "AKHBAR_HOME": str(home),
        "AKHBAR_ADMIN_KEY": KEY,
        "AKHBAR_ALLOW_PRIVATE_URLS": "1",
        "AKHBAR_PRECISION": "fp32",
    }
    cli = Path(sys.executable).parent / "akhbar"
    proc = subprocess.Popen(
        [str(cli), "serve", "--allow-empty", "--watch", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        feeds: list[dict] = []
        while not (feeds and feeds[0]["last_outcome"]):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the feed was not polled"
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                feeds = httpx.get(f"{base}/v1/feeds", headers=AUTH, timeout=2).json()["feeds"]
            time.sleep(0.2)
        assert feeds[0]["last_outcome"] == "ok" and feeds[0]["total_new_items"] == 3
        text = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'akhbar_feed_polls_total{outcome="ok"} 1.0' in text
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    # Stopped by Ctrl-C, poller and all: uvicorn ends with the signal's status (130).
    assert proc.returncode in (0, 130), stderr.decode()[-2000:]
    assert b"Traceback" not in stderr, stderr.decode()[-2000:]
    assert articles(home) == {s.title for s in STORIES[:3]}


def test_watch_runs_until_interrupted(home: Path, server: FeedServer):
    """`akhbar watch` in its own process: polls at once, then stops cleanly on Ctrl-C."""
    with Store(home / "akhbar.sqlite3") as store:
        assert store.add_feed(new_feed(server.url("/rss"), None, 900.0, time.time()))
    env = {**os.environ, "AKHBAR_ALLOW_PRIVATE_URLS": "1", "PYTHONUNBUFFERED": "1"}
    cli = Path(sys.executable).parent / "akhbar"
    proc = subprocess.Popen(
        [str(cli), "watch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline().decode()  # type: ignore[union-attr]
        assert f"{server.url('/rss')}: ok, 3 new" in line, line
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert b"stopped" in stderr
    assert articles(home) == {s.title for s in STORIES[:3]}


def test_the_opt_in_reaches_akhbar_ingest_too(tmp_path: Path, server: FeedServer):
    from akhbar.pipeline import run_ingest

    refused = run_ingest(Settings(home=tmp_path), [server.url("/rss")])
    assert refused.unreadable == [server.url("/rss")] and refused.stored == 0
    assert "AKHBAR_ALLOW_PRIVATE_URLS" in refused.reasons[0][1]
    assert server.hits == []
    allowed = run_ingest(Settings(home=tmp_path, allow_private_urls=True), [server.url("/rss")])
    assert allowed.stored == 3 and not allowed.unreadable
