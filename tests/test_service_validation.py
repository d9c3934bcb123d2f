"""Clear 422s for /v1/ask and /v1/articles: one code per kind of mistake, readable words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.service.schemas import ArticleIn, AskRequest
from akhbar.settings import Settings

QUESTION = "Quelle capacité pour le data center de Dakhla ?"
ADMIN = "validation-admin-key"


def _error(resp) -> dict:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    return body["error"]


@pytest.fixture(scope="module")
def client(sample_settings: Settings, engine: QAEngine) -> Iterator[TestClient]:
    s = Settings(**{**sample_settings.model_dump(), "rate_limit_per_minute": 0, "admin_key": ADMIN})
    with TestClient(create_app(s, engine)) as c:
        yield c


# -- the models alone (no model, no index) ---------------------------------------------------


def test_languages_are_case_insensitive_and_from_the_served_set() -> None:
    assert AskRequest(question="q", languages=["FR", " es "]).languages == ["fr", "es"]
    with pytest.raises(ValidationError, match="'fr', 'es', 'en' or 'ar'"):
        AskRequest(question="q", languages=["xx"])


def test_since_after_until_is_refused() -> None:
    AskRequest(question="q", since=date(2024, 1, 1), until=date(2024, 1, 1))
    with pytest.raises(ValidationError, match="is after until"):
        AskRequest(question="q", since=date(2024, 2, 1), until=date(2024, 1, 1))


@pytest.mark.parametrize("value", [0, 1_700_000_000, 3.5])
def test_numbers_are_not_dates(value: float) -> None:
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        ArticleIn(title="t", text="x", published=value)
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        AskRequest(question="q", since=value)
    assert ArticleIn(title="t", text="x", published="2024-03-01").published == date(2024, 3, 1)


def test_question_schema_says_what_the_route_refuses() -> None:
    schema = AskRequest.model_json_schema()["properties"]["question"]
    assert schema["minLength"] == 1 and schema["pattern"] == r"\S"


# -- through the app -------------------------------------------------------------------------


def test_unknown_language_names_the_served_ones(client: TestClient) -> None:
    err = _error(client.post("/v1/ask", json={"question": QUESTION, "languages": ["xx"]}))
    assert err["code"] == "invalid_request"
    assert "languages.0" in err["message"] and "'fr', 'es', 'en'" in err["message"]


def test_upper_case_language_filters_like_lower_case(client: TestClient) -> None:
    upper = client.post("/v1/ask", json={"question": QUESTION, "languages": ["FR"]})
    lower = client.post("/v1/ask", json={"question": QUESTION, "languages": ["fr"]})
    assert upper.status_code == lower.status_code == 200
    assert upper.json()["passages"], "FR must filter like fr, not match nothing"
    assert [p["id"] for p in upper.json()["passages"]] == [
        p["id"] for p in lower.json()["passages"]
    ]
    assert {p["language"] for p in upper.json()["passages"]} == {"fr"}


def test_since_after_until_is_a_422(client: TestClient) -> None:
    err = _error(
        client.post(
            "/v1/ask", json={"question": QUESTION, "since": "2026-02-01", "until": "2026-01-01"}
        )
    )
    assert err["code"] == "invalid_request"
    assert err["message"] == "body: since (2026-02-01) is after until (2026-01-01)"


@pytest.mark.parametrize("k", [0, 51, 10**6])
def test_k_out_of_range_is_one_kind_of_mistake(client: TestClient, k: int) -> None:
    err = _error(client.post("/v1/ask", json={"question": QUESTION, "k": k}))
    assert err["code"] == "invalid_request"
    assert err["message"].startswith("k: ")


@pytest.mark.parametrize("question", ["", "   \n ", "x" * 2001])
def test_question_problems_share_one_code(client: TestClient, question: str) -> None:
    assert _error(client.post("/v1/ask", json={"question": question}))["code"] == (
        "invalid_question"
    )


def test_broken_json_is_explained(client: TestClient) -> None:
    resp = client.post(
        "/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    err = _error(resp)
    assert err["code"] == "invalid_json"
    assert err["message"] == "the request body is not valid JSON: Expecting value at character 13"


def test_a_number_as_published_date_is_refused_not_stored_as_1970(client: TestClient) -> None:
    resp = client.post(
        "/v1/articles",
        json=[{"title": "T", "text": "Un texte.", "published": 0}],
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    err = _error(resp)
    assert err["code"] == "invalid_request"
    assert "published" in err["message"] and "YYYY-MM-DD" in err["message"]
