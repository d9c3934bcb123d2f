"""Hostile input on every route (hypothesis): whatever arrives, no 5xx and the JSON error.

Complements test_service_schema (schemathesis, inputs shaped by the schema): here the
inputs ignore the schema — arbitrary bytes as bodies, wrong content types, odd paths and
query strings, forged headers — with and without keys.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

ADMIN = "hostile-admin-key"
ASK = "hostile-ask-key"
EXAMPLES = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every route of the app, by method and path (ids stand for the path parameters).
ROUTES = [
    ("POST", "/v1/ask"),
    ("GET", "/v1/articles/{id}"),
    ("DELETE", "/v1/articles/{id}"),
    ("POST", "/v1/articles"),
    ("GET", "/v1/jobs/{id}"),
    ("GET", "/v1/outlets"),
    ("GET", "/articles/{id}"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/"),
    ("GET", "/static/{id}"),
    ("GET", "/docs-assets/{id}"),
    ("GET", "/favicon.ico"),
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
# Shaped like the routes' bodies, with hostile values in the fields.
hostile_field = (
    st.text()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(["", " ", "\u0000", "\ud800", "1970-01-01", "9999-12-31", "0", "-1"])
    | st.sampled_from(["javascript:alert(1)", "http://127.0.0.1/", "<script>x</script>"])
    | json_values
)
ask_bodies = st.fixed_dictionaries(
    {},
    optional={
        "question": hostile_field,
        "k": hostile_field,
        "languages": hostile_field,
        "outlets": hostile_field,
        "since": hostile_field,
        "until": hostile_field,
        "extra": hostile_field,
    },
)
article_bodies = st.fixed_dictionaries(
    {"title": hostile_field, "text": hostile_field},
    optional={
        "url": hostile_field,
        "outlet": hostile_field,
        "published": hostile_field,
        "language": hostile_field,
    },
)
ingest_bodies = st.lists(article_bodies, max_size=3) | st.fixed_dictionaries(
    {"articles": st.lists(article_bodies, max_size=3)}
)
path_params = st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe=""))
queries = st.dictionaries(
    st.sampled_from(["start", "end", "hs", "he", "ui", "k", "q", "x"]),
    st.text(max_size=20) | st.integers().map(str),
    max_size=4,
)


def _check(resp) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        body = resp.json()
        assert set(body) == {"error"}, body
        assert body["error"]["code"] and body["error"]["message"]


@pytest.fixture(scope="module")
def hostile_engine(
    tmp_path_factory: pytest.TempPathFactory, sample_home: Path, settings_for, encoder
) -> Iterator[QAEngine]:
    # A private copy: authenticated admin calls really ingest and delete.
    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(sample_home, home, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    engine = QAEngine(settings_for(home, fetch_timeout_s=2.0), encoder)
    yield engine
    engine.close()


def _app_client(engine: QAEngine, **overrides) -> TestClient:
    s = Settings(**{**engine.settings.model_dump(), "rate_limit_per_minute": 0, **overrides})
    return TestClient(create_app(s, engine))


@pytest.fixture(scope="module")
def open_client(hostile_engine: QAEngine) -> Iterator[TestClient]:
    with _app_client(hostile_engine, admin_key=ADMIN) as c:
        yield c


@pytest.fixture(scope="module")
def closed_client(hostile_engine: QAEngine) -> Iterator[TestClient]:
    with _app_client(hostile_engine, admin_key=ADMIN, ask_key=ASK) as c:
        yield c


def _auth(choice: str) -> dict[str, str | bytes]:
    return {
        "none": {},
        "admin": {"Authorization": f"Bearer {ADMIN}"},
        "ask": {"Authorization": f"Bearer {ASK}"},
        "junk": {"Authorization": b"Bearer \xe9\xe9 " + b"x" * 300},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }[choice]


auths = st.sampled_from(["none", "admin", "ask", "junk", "basic"])


@EXAMPLES
@given(
    route=st.sampled_from(ROUTES),
    method=st.sampled_from(METHODS),
    param=path_params,
    query=queries,
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "", b"a/b; c=\xff"]
    ),
    auth=auths,
    closed=st.booleans(),
)
def test_any_method_path_query_and_bytes(
    open_client: TestClient,
    closed_client: TestClient,
    route: tuple[str, str],
    method: str,
    param: str,
    query: dict[str, str],
    body: bytes,
    content_type: str | bytes,
    auth: str,
    closed: bool,
) -> None:
    client = closed_client if closed else open_client
    path = route[1].replace("{id}", param)
    if method == "POST" and path == "/v1/index/rebuild":
        return  # a real rebuild is a long job: exercised in test_service_admin
    headers: dict[str, str | bytes] = {**_auth(auth), "X-Forwarded-For": "1.2.3.4, ::1"}
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.request(method, path, params=query, content=body, headers=headers)
    _check(resp)


@EXAMPLES
@given(body=ask_bodies, auth=auths, closed=st.booleans())
def test_ask_with_hostile_fields(
    open_client: TestClient, closed_client: TestClient, body: dict, auth: str, closed: bool
) -> None:
    client = closed_client if closed else open_client
    content = json.dumps(body).encode("utf-8", "surrogatepass")
    resp = client.post(
        "/v1/ask",
        content=content,
        headers={**_auth(auth), "Content-Type": "application/json"},
    )
    _check(resp)


@EXAMPLES
@given(body=ingest_bodies)
def test_ingest_with_hostile_fields(open_client: TestClient, body: object) -> None:
    content = json.dumps(body).encode("utf-8", "surrogatepass")
    resp = open_client.post(
        "/v1/articles",
        content=content,
        headers={**_auth("admin"), "Content-Type": "application/json"},
    )
    _check(resp)
    if resp.status_code == 200:
        out = resp.json()
        assert out["total"] == out["stored"] + out["duplicate"] + out["unchanged"] + out["rejected"]


@EXAMPLES
@given(nesting=st.integers(min_value=1, max_value=100_000), opener=st.sampled_from("[{"))
def test_deeply_nested_json_bodies(open_client: TestClient, nesting: int, opener: str) -> None:
    body = (opener + ('"a":' if opener == "{" else "")) * nesting
    for path in ("/v1/ask", "/v1/articles"):
        resp = open_client.post(
            path,
            content=body.encode(),
            headers={**_auth("admin"), "Content-Type": "application/json"},
        )
        _check(resp)
        assert resp.status_code in (400, 413, 422), resp.status_code
