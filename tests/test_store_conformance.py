"""The article store's contract, run on every engine: SQLite (a file) and PostgreSQL (the
session database, each test in a schema of its own migrated as `akhbar db migrate` does).
The postgres cases skip, saying why, only where the postgres extra is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import Article, RawItem
from akhbar.corpus.store import (
    ArticleStore,
    ChangesPrunedError,
    FeedRecord,
    JobRecord,
    SqliteStore,
    StoredState,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "data" / "sample"
WIKINEWS = [json.loads(line) for line in (SAMPLE / "frwikinews_2012.jsonl").open(encoding="utf-8")]

Opener = Callable[[], ArticleStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a store (another connection, as another process would) on one place."""
    opened: list[ArticleStore] = []
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        def make() -> ArticleStore:
            return SqliteStore(path)

    else:
        url = request.getfixturevalue("postgres_url")
        import psycopg

        from akhbar.corpus.store.postgres import PostgresStore
        from akhbar.index.postgres.schema import migrate

        namespace = f"s_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url) as conn:
            migrate(conn, namespace)

        def make() -> ArticleStore:
            return PostgresStore(url, namespace=namespace, pool_size=2)

    def opener() -> ArticleStore:
        store = make()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Opener) -> ArticleStore:
    return open_store()


def article(n: int, **changes) -> Article:
    fields = dict(
        id=f"a-{n:03d}",
        title=f"Titre {n}",
        text=f"Texte numéro {n} de l'article.",
        language="fr",
        outlet="Le Wire",
        url=f"https://example.org/{n}",
        published=date(2024, 1, 1 + n % 28),
        author="A. Uteur",
        source="test",
    )
    fields.update(changes)
    return Article(**fields)


def put(store: ArticleStore, a: Article, digest: str | None = None, sig: bytes | None = None):
    with store.transaction() as conn:
        store.put_article(conn, a, content_hash=digest or f"h-{a.id}", signature=sig)


def raw(i: int, **changes: str) -> RawItem:
    row = WIKINEWS[i]
    fields = {"title": row["title"], "body": row["body"], "source": "test"}
    fields.update(changes)
    return RawItem(**fields)  # type: ignore[arg-type]


# -- articles ------------------------------------------------------------------------------
def test_put_get_and_replace_keep_every_field(store: ArticleStore) -> None:
    assert isinstance(store, ArticleStore)
    a = article(1, kind="headline")
    put(store, a)
    assert store.get_article(a.id) == a
    assert store.get_article("missing") is None
    assert store.stored_state(a.id) == StoredState(f"h-{a.id}", None)
    assert store.stored_state("missing") is None
    bare = Article(id="a-bare", title="t", text="x", language="es")
    put(store, bare)
    assert store.get_article("a-bare") == bare  # every optional field None
    changed = article(1, title="Nouveau titre", outlet=None, published=None)
    put(store, changed, "h-new")
    assert store.get_article(a.id) == changed
    assert store.stored_state(a.id) == StoredState("h-new", None)
    assert store.count_articles() == 2


def test_iteration_is_in_id_byte_order_across_pages_and_skips_duplicates(
    store: ArticleStore,
) -> None:
    ids = [f"z-{i:04d}" for i in range(1203)] + ["B", "a", "É", "é", "Z"]
    with store.transaction() as conn:
        for i in ids:
            store.put_article(conn, article(0, id=i), content_hash=i, signature=None)
        store.put_article(
            conn, article(0, id="dup", duplicate_of="a"), content_hash="a", signature=None
        )
    assert [a.id for a in store.iter_articles()] == sorted(ids, key=lambda s: s.encode())
    assert len(list(store.iter_articles(include_duplicates=True))) == len(ids) + 1
    assert store.count_articles() == len(ids)
    assert store.count_articles(include_duplicates=True) == len(ids) + 1


def test_checksum_is_the_same_for_the_same_articles_on_every_engine(
    store: ArticleStore, tmp_path: Path
) -> None:
    empty = store.checksum()
    for n in (3, 1, 2):
        put(store, article(n, id=f"é-{n}" if n == 2 else f"a-{n}"))
    put(store, article(9, duplicate_of="a-1"), "h-a-1")  # duplicates are not indexed
    with SqliteStore(tmp_path / "reference.sqlite3") as reference:
        assert reference.checksum() == empty
        for n in (1, 2, 3):
            put(reference, article(n, id=f"é-{n}" if n == 2 else f"a-{n}"))
        assert store.checksum() == reference.checksum() != empty
    put(store, article(3), "h-changed")
    assert store.checksum() != empty


def test_outlets_merge_case_and_skip_duplicates(store: ArticleStore) -> None:
    put(store, article(1, outlet="Le Wire"))
    put(store, article(2, outlet="Le Wire"))
    put(store, article(3, outlet="le wire"))
    put(store, article(4, outlet="Autre"))
    put(store, article(5, outlet=None))
    put(store, article(6, outlet="Autre", duplicate_of="a-004"))
    assert store.outlet_counts() == [("Le Wire", 3), ("Autre", 1)]


def test_canonical_by_hash_and_signatures_follow_insertion_order(store: ArticleStore) -> None:
    put(store, article(5), "same", b"\x00sig5")
    put(store, article(2), "same", b"\x01sig2")
    put(store, article(7), "other")
    put(store, article(8, duplicate_of="a-005"), "same", b"dupsig")
    assert store.find_canonical_by_hash("same") == "a-005"  # the first stored, not the least id
    assert store.find_canonical_by_hash("same", exclude="a-005") == "a-002"
    assert store.find_canonical_by_hash("none") is None
    put(store, article(5, title="replaced"), "same", b"\x00sig5")  # a replace keeps its place
    assert store.find_canonical_by_hash("same") == "a-005"
    assert list(store.iter_signatures()) == [("a-005", b"\x00sig5"), ("a-002", b"\x01sig2")]


def test_delete_promotes_the_oldest_duplicate(store: ArticleStore) -> None:
    put(store, article(1))
    put(store, article(3, duplicate_of="a-001"), "h-a-001")
    put(store, article(2, duplicate_of="a-001"), "h-a-001")
    assert store.delete_article("a-001")
    assert not store.delete_article("a-001")
    assert store.get_article("a-001") is None
    assert store.get_article("a-003").duplicate_of is None  # first stored is the heir
    assert store.get_article("a-002").duplicate_of == "a-003"
    assert [a.id for a in store.iter_articles()] == ["a-003"]


def test_a_failed_transaction_leaves_nothing(store: ArticleStore) -> None:
    put(store, article(1))
    before = (store.checksum(), store.change_seq(), len(store.ingest_log()))
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as conn:
        store.put_article(conn, article(2), content_hash="x", signature=None)
        store.log(conn, source="s", outcome="stored", article_id="a-002")
        raise RuntimeError("boom")
    assert (store.checksum(), store.change_seq(), len(store.ingest_log())) == before
    assert store.get_article("a-002") is None
    put(store, article(2))  # and the next write goes through
    assert store.get_article("a-002") is not None


# -- the change log ------------------------------------------------------------------------
def test_changes_are_read_in_commit_order_each_id_once(store: ArticleStore) -> None:
    assert store.change_seq() == 0
    assert store.changes_after(0) == ([], 0)
    put(store, article(2))
    put(store, article(1))
    put(store, article(2), "h-2b")  # an update is a change
    seq = store.change_seq()
    assert store.changes_after(0) == (["a-002", "a-001"], seq)
    ids, stop = store.changes_after(0, limit=2)
    assert ids == ["a-002", "a-001"] and 0 < stop < seq
    assert store.changes_after(stop) == (["a-002"], seq)
    assert store.delete_article("a-001")  # a delete too
    assert store.changes_after(seq) == (["a-001"], store.change_seq())
    assert store.change_seq() > seq
    with store.transaction() as conn:  # a log line is not an article write
        store.log(conn, source="s", outcome="rejected", reason="empty")
    assert store.changes_after(store.change_seq()) == ([], store.change_seq())


def test_reading_changes_in_small_pieces_misses_no_write_of_a_large_transaction(
    store: ArticleStore,
) -> None:
    put(store, article(9))
    with store.transaction() as conn:
        for i in range(1, 6):
            store.put_article(conn, article(i), content_hash=f"h{i}", signature=None)
        store.put_article(conn, article(2), content_hash="h2b", signature=None)
    put(store, article(7))
    seen, seq, reads = [], 0, 0
    while True:
        ids, stop = store.changes_after(seq, limit=2)
        if not ids:
            break
        assert stop > seq
        seen += ids
        seq, reads = stop, reads + 1
    assert seq == store.change_seq() and reads >= 2
    assert sorted(set(seen)) == ["a-001", "a-002", "a-003", "a-004", "a-005", "a-007", "a-009"]
    assert seen[0] == "a-009" and seen[-1] == "a-007"  # transactions in commit order


def test_a_writer_waits_for_the_open_one_so_numbers_follow_commits(open_store: Opener) -> None:
    first, second, reader = open_store(), open_store(), open_store()
    start = first.change_seq()
    done = threading.Event()

    def other_writer() -> None:
        put(second, article(2))
        done.set()

    with first.transaction() as conn:
        first.put_article(conn, article(1), content_hash="h", signature=None)
        thread = threading.Thread(target=other_writer)
        thread.start()
        # The other write cannot commit while this one is open.
        assert not done.wait(0.5)
        assert reader.changes_after(start) == ([], start)
    thread.join(30)
    assert done.is_set()
    ids, stop = reader.changes_after(start)
    assert ids == ["a-001", "a-002"] and stop == reader.change_seq() == first.change_seq()


def test_pruned_changes_are_gone_and_a_reader_left_behind_is_told(open_store: Opener) -> None:
    store, other = open_store(), open_store()
    seqs = []
    for n in range(3):
        put(store, article(n))
        seqs.append(store.change_seq())
    assert store.prune_changes(seqs[1]) == 2
    assert other.changes_after(seqs[1]) == (["a-002"], seqs[2])
    for behind in (0, seqs[0]):  # rows after these were deleted: never a silent partial answer
        with pytest.raises(ChangesPrunedError):
            other.changes_after(behind)
    assert store.prune_changes(seqs[2] + 100) == 1  # at most up to the last write
    assert store.change_seq() == seqs[2] and store.changes_after(seqs[2]) == ([], seqs[2])
    assert store.prune_changes(seqs[0]) == 0  # going back keeps the higher floor
    with pytest.raises(ChangesPrunedError):
        other.changes_after(seqs[1])
    assert store.delete_article("a-000")  # numbering goes on past the pruned rows
    assert other.changes_after(seqs[2]) == (["a-000"], store.change_seq())
    assert store.change_seq() > seqs[2]


# -- the ingest log and ingest through the store -------------------------------------------
def test_ingest_logs_every_outcome_in_order(store: ArticleStore) -> None:
    report = ingest(
        store,
        [
            raw(0, url="https://a.example/1"),
            raw(0, url="https://b.example/copy", body=WIKINEWS[0]["body"].upper()),
            RawItem(title="", body=" \n\t ", source="test"),
            raw(0, url="https://a.example/1"),
        ],
    )
    assert (report.stored, report.duplicate, report.rejected, report.unchanged) == (1, 1, 1, 1)
    log = store.ingest_log()
    assert [e.outcome for e in log] == ["stored", "duplicate", "rejected", "unchanged"]
    assert log[1].duplicate_of == log[0].article_id and log[2].reason
    assert all(e.ts.endswith("+00:00") and e.source == "test" for e in log)
    assert [e.outcome for e in store.ingest_log(limit=2)] == ["stored", "duplicate"]
    [canonical] = list(store.iter_articles())
    assert store.count_articles(include_duplicates=True) == 2
    assert canonical.url == "https://a.example/1" and canonical.language == "fr"
    assert [i for i, _ in store.iter_signatures()] == [canonical.id]


# -- jobs ----------------------------------------------------------------------------------
def test_jobs_save_get_interrupt_and_prune(store: ArticleStore) -> None:
    job = JobRecord(id="j1", kind="rebuild", status="running", stage="encode", done=3,
                    total=10, created=100.0, started=101.5)  # fmt: skip
    store.save_job(job)
    assert store.get_job("j1") == job
    assert store.get_job("nope") is None
    job.status, job.result, job.finished = "succeeded", {"version": "v1", "n": [1, 2]}, 120.25
    store.save_job(job)
    assert store.get_job("j1") == job
    store.save_job(JobRecord(id="j2", kind="rebuild", status="queued", created=200.0))
    store.save_job(JobRecord(id="j3", kind="rebuild", status="running", created=300.0))
    assert store.interrupt_jobs(("queued", "running"), "the server stopped", 400.0) == 2
    j3 = store.get_job("j3")
    assert (j3.status, j3.error, j3.finished) == ("interrupted", "the server stopped", 400.0)
    assert store.get_job("j1").status == "succeeded"
    assert store.interrupt_jobs(("queued", "running"), "again", 500.0) == 0
    store.save_job(JobRecord(id="j0", kind="rebuild", status="queued", created=300.0))
    store.prune_jobs(2)  # the newest two by creation, the last saved first on a tie
    assert [store.get_job(i) is not None for i in ("j0", "j1", "j2", "j3")] == [
        True, False, False, True,
    ]  # fmt: skip


# -- feeds ---------------------------------------------------------------------------------
def feed(url: str, next_poll: float = 1000.0) -> FeedRecord:
    return FeedRecord(url=url, outlet="Wire", interval_s=900.0, created=10.0, next_poll=next_poll)


def test_feeds_add_list_save_and_remove(store: ArticleStore) -> None:
    assert store.add_feed(feed("https://b.example/rss", 2000.0))
    assert store.add_feed(feed("https://a.example/rss", 1000.0))
    assert not store.add_feed(feed("https://a.example/rss", 5.0))  # already there: unchanged
    assert store.get_feed("https://a.example/rss") == feed("https://a.example/rss", 1000.0)
    assert store.get_feed("https://none.example/") is None
    assert [f.url for f in store.list_feeds()] == ["https://a.example/rss", "https://b.example/rss"]
    state = feed("https://a.example/rss", 3000.0)
    state.etag, state.last_modified, state.ttl_s = '"x1"', "Tue, 01 Dec 2026 10:00:00 GMT", 60.0
    state.last_poll, state.last_outcome, state.last_success = 1001.5, "ok", 1001.5
    state.last_error, state.last_error_at, state.failures = "HTTP 500", 900.25, 2
    state.last_new_items, state.total_new_items = 3, 7
    state.outlet, state.interval_s = "ignored", 1.0  # a poll does not change the subscription
    assert store.save_feed_state(state)
    saved = store.get_feed("https://a.example/rss")
    assert (saved.outlet, saved.interval_s) == ("Wire", 900.0)
    state.outlet, state.interval_s = "Wire", 900.0
    assert saved == state
    assert [f.url for f in store.list_feeds()][0] == "https://b.example/rss"  # next due first
    assert store.remove_feed("https://a.example/rss")
    assert not store.remove_feed("https://a.example/rss")
    assert not store.save_feed_state(state)  # removed meanwhile: stays gone
    assert store.get_feed("https://a.example/rss") is None


def test_of_two_pollers_claiming_a_due_feed_only_one_wins(open_store: Opener) -> None:
    first, second = open_store(), open_store()
    urls = [f"https://feeds.example/{i}" for i in range(20)]
    for i, url in enumerate(urls):
        assert first.add_feed(feed(url, 1000.0 + i / 3))
    due = {f.url: f.next_poll for f in second.list_feeds()}
    wins: dict[str, list[bool]] = {url: [] for url in urls}
    barrier = threading.Barrier(2)

    def poller(store: ArticleStore, lease: float) -> None:
        barrier.wait()
        for url in urls:
            wins[url].append(store.claim_feed(url, due[url], lease))

    threads = [
        threading.Thread(target=poller, args=(s, t)) for s, t in ((first, 5e3), (second, 6e3))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(sorted(w) == [False, True] for w in wins.values()), wins
    assert all(f.next_poll in (5e3, 6e3) for f in first.list_feeds())
    assert not first.claim_feed(urls[0], due[urls[0]], 7e3)  # no longer due at that time
    assert not first.claim_feed("https://gone.example/", 1.0, 7e3)


# -- the postgres schema -------------------------------------------------------------------
def test_the_store_schema_is_a_migration_checked_at_start_up(postgres_url: str) -> None:
    """`akhbar db migrate` creates the store's tables (a track of its own beside the
    index's); start-up refuses a schema without them, or behind or ahead of the release."""
    import psycopg

    from akhbar.corpus.store.postgres import PostgresStore, StoreSchemaError
    from akhbar.index.postgres.schema import STORE, SchemaError, check, migrate, migrations

    namespace = f"s_{uuid.uuid4().hex[:12]}"
    with pytest.raises(StoreSchemaError, match="akhbar db migrate"):
        PostgresStore(postgres_url, namespace=namespace)
    with psycopg.connect(postgres_url) as conn:
        applied = migrate(conn, namespace)
        assert "0001_store.sql" in applied
        assert applied == [m.name for m in migrations()]
        check(conn, namespace)
        conn.execute(f"DELETE FROM {namespace}.{STORE.table}")
        conn.commit()
        needs = sum(m.track == STORE for m in migrations())
        with pytest.raises(SchemaError, match=f"article store .* needs {needs}: run `akhbar db"):
            check(conn, namespace)
        for version in range(1, needs + 2):  # one past this release's
            conn.execute(f"INSERT INTO {namespace}.{STORE.table} VALUES (%s, 'x')", [version])
        conn.commit()
        with pytest.raises(SchemaError, match="article store .* upgrade akhbar"):
            check(conn, namespace)


def test_the_corpus_imports_without_the_postgres_extra() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = sys.modules['psycopg_pool'] = None\n"
        "import akhbar.corpus.store, akhbar.corpus.ingest, akhbar.corpus.poller\n"
        "try:\n    import akhbar.corpus.store.postgres\nexcept ImportError:\n    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# -- outages -------------------------------------------------------------------------------
def test_the_postgres_store_recovers_cut_connections_and_reports_an_outage(
    postgres_url: str,
) -> None:
    """Connections the database cut (a restart) are replaced as they are handed out; a
    store that gets no connection in time raises StoreUnavailableError, not a driver
    error, and the next call after the outage goes through."""
    import psycopg

    from akhbar.corpus.store.errors import StoreUnavailableError
    from akhbar.corpus.store.postgres import PostgresStore
    from akhbar.index.postgres.schema import migrate

    namespace = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url) as conn:
        migrate(conn, namespace)
    with PostgresStore(postgres_url, namespace=namespace, pool_size=1, wait_s=0.5) as store:
        put(store, article(1))
        with store.transaction() as conn:  # the pool's only connection
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]
        assert store.get_article("a-001") is not None  # a fresh connection, no error
        held = threading.Event()
        release = threading.Event()

        def hold_the_only_connection() -> None:
            with store.transaction():
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold_the_only_connection)
        holder.start()
        try:
            assert held.wait(30)
            with pytest.raises(StoreUnavailableError, match="no connection in time"):
                store.count_articles()
        finally:
            release.set()
            holder.join(30)
        assert store.count_articles() == 1


def test_a_store_outage_is_answered_503_with_retry_after() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from akhbar.corpus.store.errors import StoreUnavailableError
    from akhbar.service.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/down")
    def down() -> None:
        raise StoreUnavailableError("the store's database cannot be reached")

    response = TestClient(app).get("/down")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "store_unavailable"


def test_sqlite_reads_each_page_of_articles_along_the_id_index(tmp_path: Path) -> None:
    """A page of ``iter_articles`` is read along the id index, not by reading every
    canonical article through another index and sorting them (quadratic in the store)."""
    from akhbar.corpus.store import sqlite as engine

    with engine.SqliteStore(tmp_path / "s.sqlite3") as s:
        for sql in (engine._PAGE_ALL, engine._PAGE_CANONICAL):
            plan = " ".join(r[3] for r in s._conn.execute("EXPLAIN QUERY PLAN " + sql, ("", 1)))
            assert "sqlite_autoindex_articles_1 (id>?)" in plan and "TEMP B-TREE" not in plan
