"""DNS pinning: the fetcher connects to the address it checked, never to a second answer."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from akhbar.corpus.sources.fetch import Fetcher, FetchError, PinnedTransport

PUBLIC = "93.184.216.34"
SECRET = b"<html><body>loopback-only admin page</body></html>"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, "host": self.headers.get("Host", "")})
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(SECRET)))
        self.end_headers()
        self.wfile.write(SECRET)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.HTTPServer) -> Iterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    server.RequestHandlerClass = type("Handler", (_Recorder,), {"seen": seen})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback() -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A page only this machine can reach: what a rebinding attack is after."""
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder))


class RebindingResolver:
    """Public on the first question, loopback on every later one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        return [PUBLIC] if len(self.calls) == 1 else ["127.0.0.1"]


def test_rebinding_name_never_reaches_the_loopback_page(
    loopback: tuple[int, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = loopback
    resolver = RebindingResolver()
    # Any lookup made when connecting (the system's, as an HTTP client would do) gets the
    # rebound answer too.
    system_getaddrinfo = socket.getaddrinfo

    def rebound_getaddrinfo(host, *args, **kwargs):
        if host == "rebind.example":
            resolver.calls.append(host)
            return system_getaddrinfo("127.0.0.1", *args, **kwargs)
        return system_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound_getaddrinfo)
    fetcher = Fetcher(resolver=resolver, timeout=2.0)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(f"http://rebind.example:{port}/admin")
    # The only connection attempt went to the checked public address (unreachable here).
    assert "failed" in str(info.value)
    assert seen == []
    assert resolver.calls == ["rebind.example"]


def test_pinned_transport_connects_to_the_pin_and_keeps_the_host(
    loopback: tuple[int, list[dict[str, str]]],
) -> None:
    port, seen = loopback
    pins = {("news.example", port): "127.0.0.1"}
    with httpx.Client(transport=PinnedTransport(pins), trust_env=False) as client:
        resp = client.get(f"http://news.example:{port}/feed")
        assert resp.status_code == 200 and resp.content == SECRET
        # A name that was not checked gets no connection (and no DNS question) at all.
        with pytest.raises(httpx.ConnectError, match="not checked"):
            client.get(f"http://localhost:{port}/feed")
    assert seen == [{"path": "/feed", "host": f"news.example:{port}"}]


def test_every_redirect_hop_is_resolved_once_and_checked() -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return ["10.0.0.7"] if host == "internal.example" else [PUBLIC]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "news.example.com":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/feed"})
        if request.url.host == "cdn.example.net":
            return httpx.Response(302, headers={"Location": "http://internal.example/"})
        raise AssertionError(f"no request may reach {request.url}")

    fetcher = Fetcher(resolver=resolver, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="10.0.0.7 is a private address"):
        fetcher.fetch("https://news.example.com/feed")
    assert calls == ["news.example.com", "cdn.example.net", "internal.example"]


@pytest.fixture
def tls_loopback(tmp_path: Path) -> Iterator[tuple[int, list[str], ssl.SSLContext]]:
    """A TLS server on loopback whose certificate is for news.example only."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=news.example",
         "-addext", "subjectAltName=DNS:news.example"],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name) and None  # type: ignore[func-returns-value]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    for port, _seen in _serve(server):
        yield port, names, client_ctx


def test_pinned_tls_keeps_sni_and_the_certificate_check(
    tls_loopback: tuple[int, list[str], ssl.SSLContext],
) -> None:
    port, names, client_ctx = tls_loopback
    pins = {("news.example", port): "127.0.0.1"}
    with httpx.Client(transport=PinnedTransport(pins, ssl_context=client_ctx)) as client:
        assert client.get(f"https://news.example:{port}/").content == SECRET
    assert names == ["news.example"]
    # The same pin under another name: the certificate does not match, nothing is read.
    pins[("other.example", port)] = "127.0.0.1"
    with (
        httpx.Client(transport=PinnedTransport(pins, ssl_context=client_ctx)) as client,
        pytest.raises(httpx.ConnectError, match="certificate|hostname"),
    ):
        client.get(f"https://other.example:{port}/")
