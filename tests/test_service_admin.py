"""The admin flow on a private copy of the sample: ingest, rebuild, delete, over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

KEY = "admin-key-for-tests"


AUTH = {"Authorization": f"Bearer {KEY}"}

NEW_ARTICLES = [
    {
        "title": "Le port de Tarfaya accueille une ferme d'algues géante",
        "text": (
            "La ferme d'algues de Tarfaya couvrira 340 hectares au large du port.\n\n"
            "Selon l'agence régionale, la production annuelle atteindra 12 000 tonnes de "
            "spiruline dès 2027, destinées surtout à l'export."
        ),
        "url": "https://example.org/tarfaya-algues",
        "outlet": "Akhbar Test",
        "published": "2025-03-02",
        "language": "fr",
    },
    {
        "title": "Tánger inaugura un museo del estrecho",
        "text": (
            "El nuevo museo del estrecho de Tánger abrirá sus puertas en mayo. "
            "La colección reúne 4.000 mapas antiguos donados por la fundación Ibn Battuta."
        ),
        "outlet": "Akhbar Test",
        "published": "2025-03-03",
    },
]
TARFAYA_Q = "Quelle surface pour la ferme d'algues de Tarfaya ?"


@pytest.fixture
def admin(fresh_home: Path, settings_for, encoder) -> Iterator[TestClient]:
    settings: Settings = settings_for(fresh_home, admin_key=KEY)
    engine = QAEngine(settings, encoder)
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client
    finally:
        engine.close()


def _ask_ids(client: TestClient, question: str, k: int = 10) -> list[str]:
    resp = client.post("/v1/ask", json={"question": question, "k": k})
    assert resp.status_code == 200, resp.text
    return [p["citation"]["article_id"] for p in resp.json()["passages"]]


def _rebuild(client: TestClient) -> dict:
    resp = client.post("/v1/index/rebuild", headers=AUTH)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "succeeded")
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "succeeded", job
    return job


def test_ingest_rebuild_ask_delete(admin: TestClient) -> None:
    version_before = admin.get("/readyz").json()["index_version"]

    resp = admin.post("/v1/articles", json=NEW_ARTICLES, headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert resp.json()["stored"] == 2 and resp.json()["total"] == 2
    # Same articles again, in the object form: nothing new.
    again = admin.post("/v1/articles", json={"articles": NEW_ARTICLES}, headers=AUTH)
    assert again.json()["unchanged"] == 2

    job = _rebuild(admin)
    result = job["result"]
    assert result["version"] != version_before
    # The POST already encoded the two (into the index's delta): the rebuild reuses them.
    assert result["reused"] > 0 and result["encoded"] == 0
    assert job["progress"]["stage"] and job["progress"]["total"] >= job["progress"]["done"]
    assert admin.get("/readyz").json()["index_version"] == result["version"]

    answer = admin.post("/v1/ask", json={"question": TARFAYA_Q, "k": 3}).json()
    assert answer["index_version"] == result["version"]
    top = answer["passages"][0]
    assert "340 hectares" in top["text"]
    tarfaya_id = top["citation"]["article_id"]
    assert top["citation"]["url"] == "https://example.org/tarfaya-algues"

    # Delete: gone from answers at once, with the index that still holds it.
    deleted = admin.delete(f"/v1/articles/{tarfaya_id}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json() == {"id": tarfaya_id, "deleted": True}
    assert admin.get(f"/v1/articles/{tarfaya_id}").status_code == 404
    assert admin.delete(f"/v1/articles/{tarfaya_id}", headers=AUTH).status_code == 404
    assert tarfaya_id not in _ask_ids(admin, TARFAYA_Q)
    assert len(_ask_ids(admin, TARFAYA_Q, k=5)) == 5  # the exclusion still fills k

    # ...and after the rebuild.
    _rebuild(admin)
    assert tarfaya_id not in _ask_ids(admin, TARFAYA_Q)

    metrics = admin.get("/metrics").text
    assert 'akhbar_ingest_items_total{outcome="stored"} 2.0' in metrics
    assert 'akhbar_rebuild_jobs_total{status="succeeded"} 2.0' in metrics


def test_article_deleted_by_another_process_is_not_served(admin: TestClient) -> None:
    from akhbar.corpus.store import Store

    first = admin.post("/v1/ask", json={"question": "data center de Dakhla", "k": 3}).json()
    victim = first["passages"][0]["citation"]["article_id"]
    engine: QAEngine = admin.app.state.engine
    # Another connection, as `akhbar` in another process would: the engine is not told.
    with Store(engine.settings.store_path) as other:
        assert other.delete_article(victim)
    assert victim not in _ask_ids(admin, "data center de Dakhla", k=3)


def test_one_rebuild_at_a_time(admin: TestClient) -> None:
    first = admin.post("/v1/index/rebuild", headers=AUTH)
    assert first.status_code == 202
    second = admin.post("/v1/index/rebuild", headers=AUTH)
    job_id = first.json()["id"]
    if second.status_code == 409:  # the first is still running (the usual case)
        assert second.json()["error"]["code"] == "conflict"
        assert second.headers["location"] == f"/v1/jobs/{job_id}"
    else:  # the first finished already: the second is a new job
        assert second.status_code == 202
        job_id = second.json()["id"]
    deadline = time.monotonic() + 120
    while admin.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert admin.get("/v1/jobs/unknown", headers=AUTH).status_code == 404


def test_ingest_validation(admin: TestClient) -> None:
    bad = admin.post("/v1/articles", json=[{"title": "x"}], headers=AUTH)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    local = admin.post("/v1/articles", json={"urls": ["file:///etc/passwd"]}, headers=AUTH)
    assert local.status_code == 422
    empty = admin.post("/v1/articles", json=[{"title": "", "text": ""}], headers=AUTH)
    assert empty.status_code == 200 and empty.json()["rejected"] == 1
