"""The server as `akhbar serve` runs it: uvicorn with service/server.py's configuration.

Raw sockets for what an HTTP client library would never send; a real `akhbar serve`
process killed with SIGKILL during a rebuild for the jobs that outlive a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from akhbar.corpus.store import Store
from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.service.server import uvicorn_config
from akhbar.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, settings_for, encoder) -> Iterator[str]:
    """`akhbar serve`'s uvicorn configuration, on a home with no index (cheap to answer)."""
    import uvicorn

    home = tmp_path_factory.mktemp("served")
    base: Settings = settings_for(home)
    settings = Settings(
        **{
            **base.model_dump(),
            "rate_limit_per_minute": 3,
            "header_timeout_s": 0.5,
            "keep_alive_s": 1,
            "max_connections": 8,
        }
    )
    engine = QAEngine(settings, encoder)
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn_config(create_app(settings, engine), settings, "127.0.0.1", port, lifespan="on")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    engine.close()


def _raw(address: str, data: bytes, wait_s: float = 10.0) -> bytes:
    """Send ``data``, then read until the server closes the connection."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        if data:
            sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the server kept the connection open: {chunks}") from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_forwarded_for_from_loopback_is_not_believed_by_default(server: str) -> None:
    """uvicorn's own default trusts X-Forwarded-For from 127.0.0.1: `akhbar serve` does not."""
    statuses = []
    with httpx.Client(base_url=f"http://{server}") as client:
        for i in range(10):
            resp = client.post(
                "/v1/ask", json={"question": "x?"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
            )
            statuses.append(resp.status_code)
    assert statuses == [503] * 3 + [429] * 7


def test_headers_that_never_finish_are_cut_off(server: str) -> None:
    # A request line and a header, then silence (slowloris): the server hangs up.
    assert _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") == b""
    # A connection that never says anything is closed too.
    assert _raw(server, b"") == b""
    # A complete request on the same kind of connection is answered as usual.
    answer = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


def test_idle_keep_alive_connection_is_closed(server: str) -> None:
    # No "Connection: close": the answer comes, then the idle connection is closed.
    answer = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')


def test_connections_over_the_limit_get_503(server: str) -> None:
    host, port = server.split(":")
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(8)]
    try:
        answer = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, requests are served again.
    answer = b""
    for _ in range(50):
        answer = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if answer.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"NOT-A-METHOD\r\n\r\n",
    ],
    ids=["tls-hello", "header-without-colon", "no-request-line"],
)
def test_protocol_garbage_gets_a_json_400(server: str, garbage: bytes) -> None:
    answer = _raw(server, garbage)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"]


def test_oversized_headers_are_refused(server: str) -> None:
    # The server answers 400 and hangs up while the rest is still coming: the client may
    # read the answer or only see the connection reset, but never a page.
    try:
        answer = _raw(
            server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        )
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_security_headers_through_the_server(server: str) -> None:
    resp = httpx.get(f"http://{server}/")
    assert resp.status_code == 200
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "server" not in resp.headers  # uvicorn's banner is off


# -- a rebuild killed with SIGKILL -------------------------------------------------------------

ADMIN = "kill-test-admin-key"


def _start(home: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "AKHBAR_HOME": str(home),
        "AKHBAR_ADMIN_KEY": ADMIN,
        "AKHBAR_PRECISION": "fp32",
    }
    cli = Path(sys.executable).parent / "akhbar"
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "akhbar serve did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)


def test_rebuild_killed_mid_way_reads_interrupted_and_a_new_one_resumes(
    fresh_home: Path,
) -> None:
    # 25 articles and no embedding cache: the rebuild has their ~100 passages to encode,
    # two progress steps of 64 (caught after the first), and the two rebuilds stay short.
    with Store(fresh_home / "akhbar.sqlite3") as store:
        for article in list(store.iter_articles(include_duplicates=True))[25:]:
            store.delete_article(article.id)
    shutil.rmtree(fresh_home / "cache", ignore_errors=True)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    port = _free_port()
    proc = _start(fresh_home, port)
    base = f"http://127.0.0.1:{port}"
    try:
        job = httpx.post(f"{base}/v1/index/rebuild", headers=auth).json()
        deadline = time.monotonic() + 300
        while True:
            seen = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=auth).json()
            progress = seen["progress"]
            assert seen["status"] in ("queued", "running"), seen  # too fast to be caught
            if progress["stage"] == "encode" and 0 < progress["done"] < progress["total"]:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc = _start(fresh_home, port)
        after = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=auth)
        assert after.status_code == 200, after.text
        state = after.json()
        assert state["status"] == "interrupted"
        assert state["progress"]["stage"] == "encode"
        assert progress["done"] <= state["progress"]["done"] < state["progress"]["total"]
        assert state["finished"] is not None and "new rebuild" in state["error"]
        # A new rebuild reuses what the killed one had encoded and cached.
        again = httpx.post(f"{base}/v1/index/rebuild", headers=auth)
        assert again.status_code == 202, again.text
        job2 = again.json()
        while job2["status"] in ("queued", "running"):
            assert time.monotonic() < deadline + 300, job2
            time.sleep(0.1)
            job2 = httpx.get(f"{base}/v1/jobs/{job2['id']}", headers=auth).json()
        assert job2["status"] == "succeeded", job2
        assert job2["result"]["reused"] >= state["progress"]["done"] > 0
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
