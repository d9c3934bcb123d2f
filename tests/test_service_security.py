"""Access rules, proxies, rate-limit keys, security headers and error shapes, in the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from akhbar.service.app import create_app
from akhbar.service.auth import access_for, require_admin
from akhbar.service.middleware import PAGE_CSP
from akhbar.service.qa import QAEngine
from akhbar.service.ratelimit import client_key
from akhbar.settings import Settings

ASK = "ask-key-for-tests"
ADMIN = "admin-key-for-tests"
METRICS = "metrics-key-for-tests"
QUESTION = "Quelle capacité pour le data center de Dakhla ?"
STATIC = Path(__file__).resolve().parent.parent / "service" / "static"
TEMPLATES = Path(__file__).resolve().parent.parent / "service" / "templates"


def _client(settings: Settings, engine: QAEngine, **overrides) -> TestClient:
    # Validated again (not model_copy), so that keys become SecretStr as from the env.
    s = Settings(**{**settings.model_dump(), **overrides})
    return TestClient(create_app(s, engine), client=("127.0.0.1", 5000))


def _error(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    return body["error"]


@pytest.fixture(scope="module")
def article_id(engine: QAEngine) -> str:
    return next(iter(engine.store.iter_articles())).id


@pytest.fixture(scope="module")
def closed(sample_settings: Settings, engine: QAEngine) -> Iterator[TestClient]:
    """A server with every key set."""
    with _client(
        sample_settings, engine, ask_key=ASK, admin_key=ADMIN, rate_limit_per_minute=0
    ) as c:
        yield c


# -- access rules ----------------------------------------------------------------------------


def _content_paths(article_id: str) -> list[str]:
    return [
        f"/v1/articles/{article_id}",
        f"/articles/{article_id}",
        "/v1/outlets",
        "/openapi.json",
        "/docs",
        "/redoc",
        "/metrics",
    ]


def test_ask_key_closes_every_route_that_reads_content(closed: TestClient, article_id: str) -> None:
    for path in _content_paths(article_id):
        assert _error(closed.get(path), 401)["code"] == "unauthorized", path
        wrong = closed.get(path, headers={"Authorization": "Bearer nope"})
        assert _error(wrong, 403)["code"] == "forbidden", path
        ok = closed.get(path, headers={"Authorization": f"Bearer {ASK}"})
        assert ok.status_code == 200, (path, ok.text[:200])
    body = closed.get(
        f"/v1/articles/{article_id}", headers={"Authorization": f"Bearer {ASK}"}
    ).json()
    assert body["id"] == article_id and body["text"]
    assert _error(closed.post("/v1/ask", json={"question": QUESTION}), 401)


def test_what_holds_no_content_stays_open_with_an_ask_key(closed: TestClient) -> None:
    for path in ("/", "/static/app.js", "/static/app.css", "/healthz", "/readyz"):
        assert closed.get(path).status_code == 200, path


def test_metrics_key_is_its_own(sample_settings: Settings, engine: QAEngine) -> None:
    with _client(sample_settings, engine, ask_key=ASK, metrics_key=METRICS) as c:
        assert _error(c.get("/metrics"), 401)
        assert _error(c.get("/metrics", headers={"Authorization": f"Bearer {ASK}"}), 403)
        ok = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        assert ok.status_code == 200 and "akhbar_request_seconds" in ok.text
    with _client(sample_settings, engine, metrics_key=METRICS) as c:
        assert _error(c.get("/metrics"), 401)
        assert c.get("/v1/outlets").status_code == 200  # no ask key: content stays open


def test_without_keys_metrics_and_content_are_open(
    sample_settings: Settings, engine: QAEngine, article_id: str
) -> None:
    with _client(sample_settings, engine) as c:
        for path in _content_paths(article_id):
            assert c.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/articles", b'{"articles": [ {"title": '),
        ("POST", "/v1/articles", b"\xff\xfe not json at all"),
        ("POST", "/v1/index/rebuild", b"{{{"),
        ("DELETE", "/v1/articles/x", b"[1,"),
        ("POST", "/v1/ask", b'{"question": '),
    ],
)
def test_auth_is_checked_before_the_body_is_parsed(
    closed: TestClient, method: str, path: str, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    assert _error(closed.request(method, path, content=body, headers=headers), 401)
    headers["Authorization"] = "Bearer wrong"
    assert _error(closed.request(method, path, content=body, headers=headers), 403)


def test_auth_comes_before_the_body_cap(sample_settings: Settings, engine: QAEngine) -> None:
    with _client(sample_settings, engine, admin_key=ADMIN, max_body_bytes=100) as c:
        resp = c.post("/v1/articles", content=b"[" + b" " * 5000 + b"]")
        assert _error(resp, 401)["code"] == "unauthorized"
        authed = c.post(
            "/v1/articles",
            content=b"[" + b" " * 5000 + b"]",
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert _error(authed, 413)["code"] == "too_large"


def test_every_route_has_an_access_rule(closed: TestClient) -> None:
    """Admin routes by their dependency, every other route at least the ask key unless it
    is one of the few named public paths."""
    app = closed.app
    schema = closed.get("/openapi.json", headers={"Authorization": f"Bearer {ASK}"}).json()
    assert schema["paths"]
    for path, ops in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "some-id", path)
        for method, op in ops.items():
            rule = access_for(method.upper(), concrete)
            if "admin" in op.get("tags", []):
                assert rule == "admin", (method, path)
            elif path not in ("/healthz", "/readyz"):
                assert rule in ("ask", "metrics"), (method, path)
    admin_routes = [
        r for r in getattr(app, "routes", []) if isinstance(r, APIRoute) and r.dependant
    ]
    for route in admin_routes:
        if any(d.call is require_admin for d in route.dependant.dependencies):
            for method in route.methods:
                assert access_for(method, route.path) == "admin", route.path
    # An unknown path is closed too: a route added later is not open by accident.
    assert access_for("GET", "/v2/something-new") == "ask"
    assert _error(closed.get("/v2/something-new"), 401)


# -- client addresses and the rate limit -----------------------------------------------------


def test_client_key_groups_ipv6_by_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7" == client_key("192.0.2.7")
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("testclient") == "testclient"


def _ask_statuses(c: TestClient, n: int, forwarded: bool) -> list[int]:
    statuses = []
    for i in range(n):
        headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"} if forwarded else {}
        statuses.append(c.post("/v1/ask", json={"question": "x?"}, headers=headers).status_code)
    return statuses


@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory, settings_for, encoder):
    """A real engine on a home with no index: /v1/ask gets past the limiter, then 503."""
    engine = QAEngine(settings_for(tmp_path_factory.mktemp("empty")), encoder)
    yield engine
    engine.close()


def test_rotating_forwarded_for_from_an_untrusted_peer_does_not_bypass_the_limit(
    empty_engine: QAEngine,
) -> None:
    s = empty_engine.settings
    with _client(s, empty_engine, rate_limit_per_minute=3) as c:
        statuses = _ask_statuses(c, 10, forwarded=True)
    assert statuses[:3] == [503, 503, 503]  # through the limiter to the missing index
    assert statuses[3:] == [429] * 7


def test_forwarded_for_is_read_only_from_trusted_proxies(empty_engine: QAEngine) -> None:
    s = empty_engine.settings
    proxy = ("10.0.0.5", 4000)
    with _client(s, empty_engine, rate_limit_per_minute=1, trusted_proxies="10.0.0.0/8") as c:
        c = TestClient(c.app, client=proxy)
        # Behind the proxy, each client has its own bucket.
        assert _ask_statuses(c, 5, forwarded=True) == [503] * 5
        # A client that forges a header in front of the proxy's is still itself: the
        # proxy appends the address it saw, and that one is read.
        forged = [
            c.post(
                "/v1/ask",
                json={"question": "x?"},
                headers={"X-Forwarded-For": f"198.51.100.{i}, 192.0.2.9"},
            ).status_code
            for i in range(4)
        ]
        assert forged == [503, 429, 429, 429]
    with _client(s, empty_engine, rate_limit_per_minute=1, trusted_proxies="10.0.0.0/8") as c:
        # A peer outside the trusted networks: its header is ignored.
        c = TestClient(c.app, client=("192.0.2.50", 4000))
        assert _ask_statuses(c, 3, forwarded=True) == [503, 429, 429]


def test_ipv6_clients_share_a_bucket_per_64(empty_engine: QAEngine) -> None:
    s = empty_engine.settings
    with _client(s, empty_engine, rate_limit_per_minute=2) as c:
        app = c.app
    statuses = []
    for host in ("2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:a:b:c:d", "2001:db8:5:7::1"):
        with TestClient(app, client=(host, 4000)) as peer:
            statuses.append(peer.post("/v1/ask", json={"question": "x?"}).status_code)
    assert statuses == [503, 503, 429, 503]


def test_bad_trusted_proxies_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        Settings(trusted_proxies="10.0.0.1, not-an-address")
    assert Settings(trusted_proxies=" 10.0.0.1 ,fd00::/8").trusted_proxies == [
        "10.0.0.1",
        "fd00::/8",
    ]


# -- headers and error shapes ----------------------------------------------------------------


def test_security_headers_on_every_response(closed: TestClient) -> None:
    for path, status in (("/", 200), ("/static/app.js", 200), ("/nope", 401), ("/healthz", 200)):
        resp = closed.get(path)
        assert resp.status_code == status, path
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
        csp = resp.headers["content-security-policy"]
        assert csp == PAGE_CSP
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert "script-src 'self';" in csp


def test_page_files_have_no_inline_script_or_style() -> None:
    """What the CSP would block: the page and templates load only files."""
    files = [*STATIC.rglob("*.html"), *TEMPLATES.rglob("*.html")]
    assert files
    for f in files:
        html = f.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f
        assert "<style" not in html, f
        assert not re.search(r"\sstyle\s*=", html), f
        assert not re.search(r"\son[a-z]+\s*=", html), f
        assert "javascript:" not in html, f


def test_options_on_an_article_lists_get_and_delete(closed: TestClient) -> None:
    resp = closed.options("/v1/articles/x", headers={"Authorization": f"Bearer {ASK}"})
    assert _error(resp, 405)["code"] == "method_not_allowed"
    assert set(resp.headers["allow"].split(", ")) == {"GET", "DELETE"}
    resp = closed.put("/v1/ask", headers={"Authorization": f"Bearer {ASK}"})
    assert _error(resp, 405) and resp.headers["allow"] == "POST"


def test_unknown_routes_and_methods_are_json(sample_settings: Settings, engine: QAEngine) -> None:
    with _client(sample_settings, engine) as c:
        assert _error(c.get("/no/such/route"), 404)["code"] == "not_found"
        assert _error(c.patch("/healthz"), 405)["code"] == "method_not_allowed"
