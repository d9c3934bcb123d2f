"""Property-based checks against the app's own OpenAPI schema: no input makes a 5xx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from akhbar.corpus.store import Store
from akhbar.service.app import create_app
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

KEY = "schema-admin-key"


@pytest.fixture(scope="module")
def schema_engine(
    tmp_path_factory: pytest.TempPathFactory, sample_home: Path, settings_for, encoder
) -> Iterator[QAEngine]:
    # A private copy: authenticated admin calls really ingest and delete.
    home = tmp_path_factory.mktemp("schema") / "home"
    shutil.copytree(sample_home, home, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    s = settings_for(home, admin_key=KEY, rate_limit_per_minute=0, fetch_timeout_s=2.0)
    engine = QAEngine(s, encoder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def real_app(schema_engine: QAEngine):  # -> FastAPI
    return create_app(schema_engine.settings, schema_engine)


class _SchemaOnlyEngine:
    """Stands in for the engine while the schema is read at import: loads no model."""

    store = Store(":memory:")  # the app's job manager keeps its jobs here

    def ready(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def add_index_listener(self, listener: object) -> None:
        pass  # no index to follow

    def delta_status(self) -> None:
        return None


# The schema does not depend on data, so it is read from an app without an engine at import
# (schemathesis' lazy fixture loader does not work with this pytest); the cases are then sent
# to the real app. A rebuild is a long background job, exercised in test_service_admin.
_schema_app = create_app(Settings(home=Path("unused-schema-home")), _SchemaOnlyEngine())  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app).exclude(
    path="/v1/index/rebuild"
)


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, real_app) -> None:
    response = case.call(app=real_app, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}
