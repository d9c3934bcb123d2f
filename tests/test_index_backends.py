"""Backend conformance: the same behaviour from every registered index backend.

Each test runs once per name in ``akhbar.pipeline.BACKENDS`` (what AKHBAR_BACKEND can
name), on the real model and the bundled sample. The in-memory backend is the reference:
exact cosines, the same BM25 and fusion, so another backend's rankings are compared to it.
The postgres backend runs on the session's embedded database (``postgres_url`` in
conftest.py) and skips, saying why, where the postgres extra is not installed.
"""

from __future__ import annotations

import dataclasses
import shutil
import typing
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from akhbar.corpus.models import Article
from akhbar.corpus.store import Store
from akhbar.index.answers import Hit, top_hits
from akhbar.index.base import (
    Filters,
    IndexBackend,
    IndexReader,
    Mode,
    NoIndexError,
)
from akhbar.pipeline import BACKENDS, dense_sizing
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

NAMES = sorted(BACKENDS)
DAKHLA = "Quelle capacité pour le data center de Dakhla ?"
NADOR = Article(
    id="test-nador-terminal",
    title="Port de Nador : un nouveau terminal à conteneurs",
    text="Le port de Nador West Med inaugure un terminal capable de traiter 3 millions de "
    "conteneurs par an. Les travaux ont duré quatre ans.",
    language="fr",
    outlet="Test Wire",
    published=date(2024, 5, 2),
)


@pytest.fixture(scope="module")
def articles(sample_settings: Settings) -> list[Article]:
    with Store(sample_settings.store_path) as store:
        return list(store.iter_articles())


@pytest.fixture(scope="module")
def home_settings(tmp_path_factory, sample_settings: Settings, settings_for) -> Settings:
    """A private home holding a copy of the sample's store and embedding cache: the
    sample's passages are not encoded again, and what these tests encode (their own
    articles) stays out of the cache other tests share."""
    home = tmp_path_factory.mktemp("backends_home")
    shutil.copytree(sample_settings.cache_dir, home / "cache")
    settings = settings_for(home)
    shutil.copy(sample_settings.store_path, settings.store_path)
    return settings


@pytest.fixture(scope="module")
def settings_of(request: pytest.FixtureRequest, home_settings: Settings):
    """The settings a backend is made from: the postgres one's name the session database
    (asked for only when a postgres test runs, so the others never wait for it)."""

    def get(name: str) -> Settings:
        if name != "postgres":
            return home_settings
        url = request.getfixturevalue("postgres_url")
        return home_settings.model_copy(update={"database_url": SecretStr(url)})

    return get


@pytest.fixture(scope="module")
def make(settings_of, encoder) -> Iterator[Callable[[str, Path], IndexBackend]]:
    made: list[IndexBackend] = []

    def new(name: str, root: Path) -> IndexBackend:
        backend = BACKENDS[name](settings_of(name), encoder, None, root)
        made.append(backend)
        return backend

    yield new
    for backend in made:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


@pytest.fixture(scope="module")
def built(tmp_path_factory, make, articles) -> Callable[[str], IndexBackend]:
    """Each backend with the whole sample, built on first use."""
    out: dict[str, IndexBackend] = {}

    def get(name: str) -> IndexBackend:
        if name not in out:
            backend = make(name, tmp_path_factory.mktemp(name))
            backend.build(articles, corpus_checksum="sample")
            out[name] = backend
        return out[name]

    return get


def ask(
    reader: IndexReader,
    encoder,
    question: str,
    k: int = 5,
    filters: Filters = Filters(),  # noqa: B008 - frozen dataclass
    mode: Mode = "hybrid",
) -> list[Hit]:
    vec = encoder.encode_queries([question])[0]
    candidates = reader.search(vec, question, k, filters, mode)
    return top_hits(reader, candidates, question, "fr", vec, k)


def test_every_backend_name_is_a_setting() -> None:
    allowed = typing.get_args(Settings.model_fields["backend"].annotation)
    assert set(allowed) == set(BACKENDS)
    assert Settings().backend == "local"


def test_each_backend_reads_its_own_settings_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKHBAR_BACKEND", "memory")
    monkeypatch.setenv("AKHBAR_LOCAL__EXACT_INDEX_MAX", "123")
    settings = Settings()
    assert settings.backend == "memory"
    assert settings.local.exact_index_max == 123
    assert dense_sizing(settings).params(124).kind == "hnsw"
    monkeypatch.setenv("AKHBAR_BACKEND", "elasticsearch")
    with pytest.raises(ValueError, match="backend"):
        Settings()


@pytest.mark.parametrize("name", NAMES)
def test_open_before_any_build_says_so(name: str, tmp_path: Path, make):
    backend = make(name, tmp_path / "index")
    assert backend.current_version() is None
    with pytest.raises(NoIndexError):
        backend.open()


@pytest.mark.parametrize("name", NAMES)
def test_search_finds_the_answer_and_highlights_it(name: str, built, encoder) -> None:
    backend = built(name)
    reader = backend.open()
    assert reader.version == backend.current_version()
    assert reader.count > 100
    (top, *_) = ask(reader, encoder, DAKHLA)
    assert "500 MW" in top.passage.chunk.text[slice(*top.highlight)]
    assert top.answers and top.margin > 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_rankings_match_the_reference_backend(name: str, mode: Mode, built, encoder) -> None:
    questions = [DAKHLA, "trafic maritime Tanger", "Which airline operated the MD-83 in Lagos?"]
    for q in questions:
        got = ask(built(name).open(), encoder, q, 10, mode=mode)
        want = ask(built("memory").open(), encoder, q, 10, mode=mode)
        assert [h.passage.chunk.id for h in got] == [h.passage.chunk.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_filters_are_obeyed(name: str, built, encoder) -> None:
    reader = built(name).open()
    hits = ask(reader, encoder, "trafic maritime Tanger", 5, Filters(languages=("es",)))
    assert hits and all(h.passage.chunk.language == "es" for h in hits)
    hits = ask(reader, encoder, "intelligence artificielle", 5, Filters(outlets=("les eco",)))
    assert hits and all(h.passage.outlet == "Les ECO" for h in hits)
    window = Filters(since=date(2012, 7, 1), until=date(2012, 8, 31))
    hits = ask(reader, encoder, "élections", 5, window)
    assert hits
    assert all(h.passage.published and window.since <= h.passage.published <= window.until
               for h in hits)  # fmt: skip
    assert ask(reader, encoder, "élections", 5, Filters(since=date(2030, 1, 1))) == []
    assert ask(reader, encoder, "élections", 5, Filters(languages=("xx",))) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_new_build_is_a_new_version_and_the_old_one_still_opens(
    name: str, tmp_path: Path, make, encoder, articles
) -> None:
    backend = make(name, tmp_path / "index")
    first = backend.build(articles[:20], corpus_checksum="a")
    old = backend.open()
    second = backend.build([*articles[:20], NADOR], corpus_checksum="b")
    assert backend.current_version() == second.version != first.version
    assert (second.articles, second.chunks - first.chunks) == (21, 1)
    assert second.encoded <= 1  # the twenty were cached
    hits = ask(backend.open(), encoder, "terminal à conteneurs de Nador", 1)
    assert hits[0].passage.chunk.article_id == NADOR.id
    # A reader opened before keeps answering from its own version.
    assert all(
        h.passage.chunk.article_id != NADOR.id
        for h in ask(old, encoder, "terminal à conteneurs de Nador", 5)
    )
    assert backend.open(first.version).version == first.version


@pytest.mark.parametrize("name", NAMES)
def test_upsert_and_delete_article_by_article(
    name: str, tmp_path: Path, make, encoder, articles
) -> None:
    backend = make(name, tmp_path / "index")
    backend.build(articles[:20], corpus_checksum="a")
    before = backend.current_version()
    added = backend.upsert([NADOR])
    assert added != before
    hits = ask(backend.open(), encoder, "terminal à conteneurs de Nador", 1)
    assert hits[0].passage.chunk.article_id == NADOR.id
    changed = dataclasses.replace(NADOR, text=NADOR.text.replace("3 millions", "5 millions"))
    backend.upsert([changed])
    texts = [
        h.passage.chunk.text
        for h in ask(backend.open(), encoder, "terminal à conteneurs de Nador", 5)
        if h.passage.chunk.article_id == NADOR.id
    ]
    assert len(texts) == 1 and "5 millions" in texts[0]
    pre = backend.open()
    backend.delete([NADOR.id, articles[0].id])
    reader = backend.open()
    assert reader.version not in (pre.version, before)
    assert reader.count < pre.count
    ids = {h.passage.chunk.article_id for h in ask(reader, encoder, NADOR.title, 20)}
    assert NADOR.id not in ids and articles[0].id not in ids
    # The reader opened before the delete still has them.
    assert NADOR.id in {h.passage.chunk.article_id for h in ask(pre, encoder, NADOR.title, 20)}


def test_the_service_answers_from_the_backend_the_settings_name(
    home_settings: Settings, encoder, articles
) -> None:
    settings = home_settings.model_copy(update={"backend": "memory"})
    engine = QAEngine(settings, encoder)
    try:
        with pytest.raises(NoIndexError):
            engine.ask(DAKHLA, 3)
        engine.index.build(articles, corpus_checksum="sample")
        answer = engine.ask(DAKHLA, 3)
        assert answer.answerable and answer.index_version == engine.index.current_version()
        top = answer.hits[0]
        assert "500 MW" in top.passage.chunk.text[slice(*top.highlight)]
    finally:
        engine.close()


class _Interrupted(RuntimeError):
    pass


def _failing_after(items: list[Article], n: int) -> Iterator[Article]:
    """The articles, then a failure: a write that dies part-way through its input."""
    yield from items[:n]
    raise _Interrupted("the process died here")


@pytest.mark.parametrize("name", NAMES)
def test_a_write_that_fails_part_way_leaves_the_served_version_whole(
    name: str, tmp_path: Path, make, encoder, articles
) -> None:
    backend = make(name, tmp_path / "index")
    backend.build(articles[:20], corpus_checksum="a")
    served = backend.current_version()
    want = [h.passage.chunk.id for h in ask(backend.open(), encoder, DAKHLA, 5)]
    with pytest.raises(_Interrupted):
        backend.build(_failing_after([*articles[:20], NADOR], 21), corpus_checksum="b")
    with pytest.raises(_Interrupted):
        backend.upsert(_failing_after([NADOR, *articles[20:23]], 3))
    assert backend.current_version() == served
    reader = backend.open()
    assert [h.passage.chunk.id for h in ask(reader, encoder, DAKHLA, 5)] == want
    assert NADOR.id not in {
        h.passage.chunk.article_id for h in ask(reader, encoder, NADOR.title, 20)
    }
    # And the backend still takes the next write.
    backend.upsert([NADOR])
    hits = ask(backend.open(), encoder, "terminal à conteneurs de Nador", 1)
    assert hits[0].passage.chunk.article_id == NADOR.id
