"""The HTTP contract of /v1/ask and /v1/articles, errors, auth, limits and metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.service.ratelimit import TokenBucketLimiter
from akhbar.settings import Settings

QUESTION = "Quelle capacité pour le data center de Dakhla ?"
ADMIN = "s3cret-admin-key"


def assert_error_shape(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["message"]
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text
    return body["error"]


def _client(settings: Settings, engine: QAEngine, **overrides) -> TestClient:
    # Validated again (not model_copy), so that keys become SecretStr as from the env.
    s = Settings(**{**settings.model_dump(), **overrides})
    return TestClient(create_app(s, engine))


@pytest.fixture(scope="module")
def client(sample_settings: Settings, engine: QAEngine) -> Iterator[TestClient]:
    with _client(sample_settings, engine, rate_limit_per_minute=0) as c:
        yield c


# -- /v1/ask contract ------------------------------------------------------------------------


def test_ask_contract_and_citations_point_into_articles(client: TestClient) -> None:
    resp = client.post("/v1/ask", json={"question": QUESTION, "k": 5})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["question_language"] == "fr"
    assert data["answerable"] is True
    assert data["index_version"]
    assert 1 <= len(data["passages"]) <= 5
    assert any("500 MW" in p["text"] for p in data["passages"])
    for p in data["passages"]:
        c = p["citation"]
        assert {"article_id", "title", "outlet", "url", "published", "start", "end"} <= set(c)
        h = p["highlight"]
        assert 0 <= h["start"] < h["end"] <= len(p["text"])
        art = client.get(f"/v1/articles/{c['article_id']}")
        assert art.status_code == 200
        assert art.json()["text"][c["start"] : c["end"]] == p["text"]
    top = data["passages"][0]
    assert "500 MW" in top["text"][top["highlight"]["start"] : top["highlight"]["end"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": ""}, 422),
        ({"question": "   \n "}, 422),
        ({"question": "x" * 2001}, 422),
        ({"question": QUESTION, "k": 0}, 422),
        ({"question": QUESTION, "k": 51}, 422),
        ({"question": QUESTION, "k": 10**30}, 422),
        ({"question": QUESTION, "unknown": 1}, 422),
        ({"question": QUESTION, "since": "not a date"}, 422),
    ],
)
def test_ask_rejects_bad_requests(client: TestClient, body: dict, status: int) -> None:
    assert_error_shape(client.post("/v1/ask", json=body), status)


def test_ask_rejects_broken_json(client: TestClient) -> None:
    resp = client.post(
        "/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    assert_error_shape(resp, 422)


def test_ten_megabyte_question_is_refused_quickly(client: TestClient) -> None:
    t0 = time.perf_counter()
    resp = client.post("/v1/ask", json={"question": "é" * 10_000_000})
    assert time.perf_counter() - t0 < 10
    assert resp.status_code in (413, 422)
    assert_error_shape(resp, resp.status_code)


def test_large_question_under_a_large_body_cap_is_a_clean_422(
    sample_settings: Settings, engine: QAEngine
) -> None:
    with _client(sample_settings, engine, max_body_bytes=50_000_000) as c:
        err = assert_error_shape(c.post("/v1/ask", json={"question": "a " * 5_000_000}), 422)
    assert "limit" in err["message"]


def test_body_cap_on_streamed_body_without_content_length(
    sample_settings: Settings, engine: QAEngine
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(64):
            yield b"a" * 1024
        yield b'"}'

    with _client(sample_settings, engine, max_body_bytes=10_000) as c:
        resp = c.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in {k.lower() for k in resp.request.headers}
        assert_error_shape(resp, 413)
        declared = c.post("/v1/ask", json={"question": "b" * 20_000})
        assert assert_error_shape(declared, 413)["code"] == "too_large"


def test_unknown_article_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert assert_error_shape(client.get("/v1/articles/nope"), 404)["code"] == "not_found"
    assert assert_error_shape(client.get("/no/such/route"), 404)["code"] == "not_found"
    assert assert_error_shape(client.get("/static/missing.js"), 404)["code"] == "not_found"
    resp = client.get("/v1/ask")
    assert assert_error_shape(resp, 405)["code"] == "method_not_allowed"


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    # An id unsafe for logs is replaced, not echoed.
    rid = client.get("/healthz", headers={"x-request-id": "bad id;x"}).headers["x-request-id"]
    assert rid != "bad id;x" and len(rid) == 16


def test_page_and_static_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js.replace("never innerHTML", "")
    assert client.get("/static/app.css").status_code == 200


# -- auth ------------------------------------------------------------------------------------

ADMIN_CALLS = [
    ("post", "/v1/articles", {"json": []}),
    ("delete", "/v1/articles/does-not-exist", {}),
    ("post", "/v1/index/rebuild", {}),
    ("get", "/v1/jobs/does-not-exist", {}),
]


@pytest.fixture(scope="module")
def admin_client(sample_settings: Settings, engine: QAEngine) -> Iterator[TestClient]:
    with _client(sample_settings, engine, admin_key=ADMIN) as c:
        yield c


@pytest.mark.parametrize(("method", "path", "kwargs"), ADMIN_CALLS)
def test_admin_routes_need_the_admin_key(
    admin_client: TestClient, method: str, path: str, kwargs: dict
) -> None:
    call = getattr(admin_client, method)
    resp = call(path, **kwargs)
    assert assert_error_shape(resp, 401)["code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    for header in ("Basic abc", "Bearer", "Bearer   ", ADMIN):
        assert_error_shape(call(path, headers={"Authorization": header}, **kwargs), 401)
    wrong = call(path, headers={"Authorization": "Bearer not-the-key"}, **kwargs)
    assert assert_error_shape(wrong, 403)["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), [c for c in ADMIN_CALLS if c[1] != "/v1/index/rebuild"]
)  # a real rebuild runs on a private home in test_service_admin
def test_admin_routes_accept_the_admin_key(
    admin_client: TestClient, method: str, path: str, kwargs: dict
) -> None:
    resp = getattr(admin_client, method)(
        path, headers={"Authorization": f"Bearer {ADMIN}"}, **kwargs
    )
    # Authorised: the route itself answers (200, or 404 for the made-up ids).
    assert resp.status_code in (200, 404), resp.text
    if resp.status_code == 200:
        assert resp.json()["total"] == 0


@pytest.mark.parametrize(("method", "path", "kwargs"), ADMIN_CALLS)
def test_admin_routes_closed_without_a_configured_key(
    client: TestClient, method: str, path: str, kwargs: dict
) -> None:
    resp = getattr(client, method)(path, headers={"Authorization": "Bearer x"}, **kwargs)
    assert "AKHBAR_ADMIN_KEY" in assert_error_shape(resp, 403)["message"]


def test_ask_key_closes_ask(sample_settings: Settings, engine: QAEngine) -> None:
    with _client(sample_settings, engine, ask_key="ask-key") as c:
        body = {"question": QUESTION}
        assert_error_shape(c.post("/v1/ask", json=body), 401)
        assert_error_shape(
            c.post("/v1/ask", json=body, headers={"Authorization": "Bearer no"}), 403
        )
        ok = c.post("/v1/ask", json=body, headers={"Authorization": "Bearer ask-key"})
        assert ok.status_code == 200
        # Everything else stays open.
        assert c.get("/healthz").status_code == 200


# -- limits ----------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(
    sample_settings: Settings, engine: QAEngine
) -> None:
    with _client(sample_settings, engine, rate_limit_per_minute=2) as c:
        body = {"question": QUESTION, "k": 1}
        assert c.post("/v1/ask", json=body).status_code == 200
        assert c.post("/v1/ask", json=body).status_code == 200
        resp = c.post("/v1/ask", json=body)
        assert assert_error_shape(resp, 429)["code"] == "rate_limited"
        assert int(resp.headers["retry-after"]) >= 1
        # Other routes are not limited.
        assert c.get("/healthz").status_code == 200


def test_token_bucket_refills_per_client() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(60, clock=lambda: now[0], max_clients=2)
    assert all(limiter.take("a") == 0 for _ in range(60))
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0  # another client has its own bucket
    now[0] += 2.0
    assert limiter.take("a") == 0
    assert TokenBucketLimiter(0).take("a") == 0  # 0 = off


def test_slow_request_times_out_with_504(
    sample_settings: Settings, engine: QAEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ask = engine.ask

    def slow_ask(*args, **kwargs):
        time.sleep(1.5)
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(engine, "ask", slow_ask)
    with _client(sample_settings, engine, request_timeout_s=0.2) as c:
        t0 = time.perf_counter()
        resp = c.post("/v1/ask", json={"question": QUESTION})
        assert time.perf_counter() - t0 < 1.2
        assert assert_error_shape(resp, 504)["code"] == "timeout"
        assert c.get("/healthz").status_code == 200


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_after_a_few_requests(sample_settings: Settings, engine: QAEngine) -> None:
    with _client(sample_settings, engine) as c:
        c.post("/v1/ask", json={"question": QUESTION})
        c.post("/v1/ask", json={"question": "What is the capital of the Moon colony in 2450?"})
        c.get("/nowhere")
        text = c.get("/metrics").text
    for name in (
        "akhbar_request_seconds_bucket",
        'route="/v1/ask"',
        'route="unmatched"',
        'akhbar_questions_total{language="fr"}',
        "akhbar_answers_total",
        "akhbar_index_chunks",
        "akhbar_index_info{version=",
        "akhbar_ingest_items_total",
        "akhbar_rebuild_jobs_total",
    ):
        assert name in text, name
    # Per-app registries: a second app starts from zero.
    with _client(sample_settings, engine) as other:
        assert "akhbar_questions_total{" not in other.get("/metrics").text


def test_access_log_lines_are_json(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    import json

    with caplog.at_level("INFO", logger="akhbar.access"):
        client.get("/healthz", headers={"x-request-id": "log-me"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "akhbar.access"]
    assert lines[-1]["request_id"] == "log-me"
    assert lines[-1]["route"] == "/healthz" and lines[-1]["status"] == 200


def test_readyz(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["chunks"] > 0


def test_configure_access_log_writes_plain_json_lines() -> None:
    import io
    import json
    import logging

    from akhbar.service.logs import ACCESS_LOGGER, configure_access_log

    logger = logging.getLogger(ACCESS_LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    try:
        configure_access_log(stream)
        configure_access_log(stream)  # idempotent
        logger.info(json.dumps({"status": 200}))
        assert stream.getvalue().splitlines() == ['{"status": 200}']
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
