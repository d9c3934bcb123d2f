"""New articles answerable without a rebuild: the local backend's delta.

What is checked: passages found through the delta rank as a full rebuild ranks them; the
delta follows the store (articles written, changed, deleted, by whichever process), is
reloaded by a reader on its next question, survives a writer killed at any step of a
write and a merge killed midway, and merges into a version that answers the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from akhbar.corpus.models import Article
from akhbar.corpus.store import Store
from akhbar.index.answers import Hit, top_hits
from akhbar.index.base import Filters, IndexReader, Mode
from akhbar.index.local import LocalIndex
from akhbar.index.local import delta as delta_module
from akhbar.index.local import searcher as searcher_module
from akhbar.pipeline import catch_up_index, local_index, run_index, run_ingest
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

QUESTIONS = [
    "Quelle capacité pour le data center de Dakhla ?",
    "trafic maritime Tanger",
    "Which airline operated the MD-83 in Lagos?",
    "élections",
]
ALGAE = {
    "id": "fresh-tarfaya-algae",
    "title": "Tarfaya : une ferme d'algues géantes sur 340 hectares",
    "text": "La ferme d'algues de Tarfaya couvrira 340 hectares au large de la côte. Le "
    "projet vise la production de bioplastiques et emploiera 120 personnes dès 2026.",
    "language": "fr",
    "outlet": "Fresh Wire",
    "url": "https://example.org/fresh-tarfaya",
    "published": "2025-04-01",
}
ALGAE_Q = "Quelle surface pour la ferme d'algues de Tarfaya ?"


def as_article(record: dict) -> Article:
    return Article(
        id=record["id"],
        title=record["title"],
        text=record["text"],
        language=record["language"],
        outlet=record["outlet"],
        url=record["url"],
        published=date.fromisoformat(record["published"]),
    )


@pytest.fixture(scope="module")
def articles(sample_settings: Settings) -> list[Article]:
    with Store(sample_settings.store_path) as store:
        return list(store.iter_articles())


@pytest.fixture(scope="module")
def home_settings(tmp_path_factory, sample_settings: Settings, settings_for) -> Settings:
    """A private home with copies of the sample's store and embedding cache."""
    home = tmp_path_factory.mktemp("fresh_home")
    shutil.copytree(sample_settings.cache_dir, home / "cache")
    settings = settings_for(home)
    shutil.copy(sample_settings.store_path, settings.store_path)
    return settings


def local(settings: Settings, encoder, root: Path) -> LocalIndex:
    return local_index(settings, encoder, None, root)


def ask(
    reader: IndexReader,
    encoder,
    question: str,
    k: int = 10,
    filters: Filters = Filters(),  # noqa: B008 - frozen dataclass
    mode: Mode = "hybrid",
) -> list[Hit]:
    vec = encoder.encode_queries([question])[0]
    return top_hits(reader, reader.search(vec, question, k, filters, mode), question, "fr", vec, k)


# A small delta is scanned in fp32 on the question's thread; a large one chooses its dense
# candidates on an fp16 copy, then rescores them, its side of the search on a second thread
# (here half the sample, with the size thresholds lifted).
@pytest.mark.parametrize("every, fp16", [(8, False), (2, True)])
def test_the_delta_ranks_as_a_full_rebuild_does(
    tmp_path: Path,
    home_settings: Settings,
    encoder,
    articles: list[Article],
    every: int,
    fp16: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fp16:
        monkeypatch.setattr(delta_module, "_FP16_MIN_ROWS", 1)
        monkeypatch.setattr(searcher_module, "_CONCURRENT_DELTA_ROWS", 1)
    else:
        monkeypatch.setattr(searcher_module, "_CONCURRENT_DELTA_ROWS", 10**9)
    held = articles[::every]
    rest = [a for a in articles if a not in held]
    partial = local(home_settings, encoder, tmp_path / "partial")
    partial.build(rest, corpus_checksum="rest")
    version = partial.upsert(held)
    assert version.endswith("+1") and partial.current_version() == version
    full = local(home_settings, encoder, tmp_path / "full")
    full.build(articles, corpus_checksum="all")
    with_delta, rebuilt = partial.open(), full.open()
    assert with_delta.count == rebuilt.count
    delta = with_delta.delta
    assert delta is not None
    if fp16:  # the fp16 scan chooses: more rows than the candidates it is asked for, twice
        assert delta._fp16 is not None and delta.count > 2 * with_delta.fusion.candidates
    else:
        assert delta._fp16 is None
    held_ids = {a.id for a in held}
    questions = [*QUESTIONS, *(a.title for a in held[:6])]
    found_in_delta = 0
    for q in questions:
        for mode in ("hybrid", "dense", "lexical"):
            got = ask(with_delta, encoder, q, 10, mode=mode)
            want = ask(rebuilt, encoder, q, 10, mode=mode)
            found_in_delta += sum(h.passage.chunk.article_id in held_ids for h in got)
            if mode == "lexical":
                # The version's own passages keep their build's IDF (without the delta's
                # share); the delta's passages score exactly as in the rebuild.
                mine = {h.passage.chunk.id: h.score for h in got}
                for h in want:
                    if h.passage.chunk.article_id in held_ids and h.passage.chunk.id in mine:
                        assert mine[h.passage.chunk.id] == pytest.approx(h.score, rel=1e-4)
                continue
            assert [h.passage.chunk.id for h in got] == [h.passage.chunk.id for h in want], q
            np.testing.assert_allclose(
                [h.score for h in got], [h.score for h in want], atol=2e-3, err_msg=q
            )
    assert found_in_delta > 10  # the comparison did rank delta passages


def test_filters_apply_to_the_delta(tmp_path: Path, home_settings, encoder, articles) -> None:
    index = local(home_settings, encoder, tmp_path / "index")
    index.build(articles[:30], corpus_checksum="a")
    index.upsert([as_article(ALGAE)])
    reader = index.open()
    top = ask(reader, encoder, ALGAE_Q, 3)[0]
    assert top.passage.chunk.article_id == ALGAE["id"]
    assert "340 hectares" in top.passage.chunk.text[slice(*top.highlight)]
    assert top.passage.url == ALGAE["url"] and top.passage.published == date(2025, 4, 1)
    for excluded in (
        Filters(languages=("es",)),
        Filters(outlets=("other",)),
        Filters(since=date(2025, 5, 1)),
        Filters(until=date(2025, 3, 1)),
    ):
        assert ALGAE["id"] not in {
            h.passage.chunk.article_id for h in ask(reader, encoder, ALGAE_Q, 10, excluded)
        }
    kept = Filters(outlets=("FRESH WIRE",), since=date(2025, 4, 1), until=date(2025, 4, 1))
    assert [h.passage.chunk.article_id for h in ask(reader, encoder, ALGAE_Q, 5, kept)] == [
        ALGAE["id"]
    ]


@pytest.mark.parametrize("tail_min", [1, 400, 8192])  # BM25 postings: sorted, mixed, scanned
def test_a_delta_opened_write_by_write_searches_as_one_opened_at_once(
    tail_min: int,
    tmp_path: Path,
    home_settings: Settings,
    encoder,
    articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader extends the delta view it has open by each new segment; a reader opening
    the last generation cold builds the view whole. Both search alike (keys, scores,
    filters), later segments override earlier ones (a rewrite, a delete, a re-add), and
    the live passages rank by cosine as a rebuild of the same articles ranks them."""
    import akhbar.index.local.delta as delta_module

    monkeypatch.setattr(delta_module, "_TAIL_MIN", tail_min)
    root = tmp_path / "index"
    index = local(home_settings, encoder, root)
    index.build(articles[:30], corpus_checksum="a")
    changed = dataclasses.replace(articles[33], text=ALGAE["text"])
    writes = [
        ("upsert", articles[30:35]),
        ("upsert", articles[35:40]),
        ("delete", [articles[32], articles[3]]),  # one delta article, one version article
        ("upsert", [changed, as_article(ALGAE)]),
        ("upsert", [articles[3]]),  # back again
    ]
    for op, batch in writes:
        if op == "upsert":
            index.upsert(batch)
        else:
            index.delete([a.id for a in batch])
        step = index.open()  # extends the view opened at the previous write
    cold = local(home_settings, encoder, root).open()
    assert step.version == cold.version and step.count == cold.count
    live = {a.id: a for a in articles[:40]} | {changed.id: changed, ALGAE["id"]: as_article(ALGAE)}
    del live[articles[32].id]
    questions = [*QUESTIONS, ALGAE_Q, articles[3].title, articles[33].title, articles[32].title]
    for q in questions:
        for filters in (Filters(), Filters(languages=("fr",)), Filters(outlets=("Fresh Wire",))):
            got, want = ask(step, encoder, q, 10, filters), ask(cold, encoder, q, 10, filters)
            assert [h.passage.chunk.id for h in got] == [h.passage.chunk.id for h in want], q
            assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-6)
        ids = article_ids(ask(step, encoder, q, 10))
        assert articles[32].id not in ids
    assert step.delta is not None
    by_article: dict[str, list[str]] = {}
    for p in step.delta.live_passages():
        by_article.setdefault(p.chunk.article_id, []).append(p.chunk.text)
    assert articles[32].id not in by_article  # deleted from the delta
    assert by_article[changed.id] and all("340 hectares" in t for t in by_article[changed.id])
    assert articles[3].id in by_article  # re-added after its delete; its version rows hidden
    assert set(step.delta.hidden_rows) >= set(step.table.rows_of_articles([articles[3].id]))
    rebuilt = local(home_settings, encoder, tmp_path / "rebuilt")
    rebuilt.build(list(live.values()), corpus_checksum="live")
    fresh = rebuilt.open()
    assert fresh.count == step.count
    for q in questions:
        got = ask(step, encoder, q, 10, mode="dense")
        want = ask(fresh, encoder, q, 10, mode="dense")
        assert [h.passage.chunk.id for h in got] == [h.passage.chunk.id for h in want], q


def test_the_store_numbers_every_article_write(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        assert store.change_seq() == 0
        assert store.changes_after(0) == ([], 0)
        article = as_article(ALGAE)
        for a in (article, dataclasses.replace(article, text=article.text + " Fin.")):
            with store.transaction() as conn:
                store.put_article(conn, a, content_hash=a.text, signature=None)
        assert store.delete_article(article.id)
        ids, seq = store.changes_after(0)
        assert ids == [article.id] and seq == store.change_seq() == 3
        assert store.changes_after(seq) == ([], seq)
        assert store.changes_after(0, limit=1) == ([article.id], 1)


def write_jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def article_ids(hits: list[Hit]) -> list[str]:
    return [h.passage.chunk.article_id for h in hits]


def wait_until(condition, timeout_s: float = 120.0) -> None:
    """Until ``condition()`` holds (what is waited for happens in another thread)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def test_a_serving_engine_follows_the_store_without_a_rebuild(
    tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    """Written by another writer that indexed nothing (as if it died after its commit):
    the engine catches up on its own; a change and a delete follow the same way."""
    settings = settings_for(fresh_home)
    built = local_index(settings, encoder).current_version()
    engine = QAEngine(settings, encoder)
    try:
        run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))])

        def top() -> list[str]:
            return [h.passage.chunk.article_id for h in engine.ask(ALGAE_Q, 3).hits]

        wait_until(lambda: top()[0] == ALGAE["id"])
        answer = engine.ask(ALGAE_Q, 3)
        assert answer.index_version.startswith(f"{built}+")
        assert "340 hectares" in answer.hits[0].passage.chunk.text

        changed = {**ALGAE, "text": ALGAE["text"].replace("340", "360")}
        run_ingest(settings, [str(write_jsonl(tmp_path / "b.jsonl", changed))])
        wait_until(lambda: "360 hectares" in engine.ask(ALGAE_Q, 3).hits[0].passage.chunk.text)
        texts = [h.passage.chunk.text for h in engine.ask(ALGAE_Q, 10).hits]
        assert not any("340 hectares" in t for t in texts)

        with Store(settings.store_path) as other:  # another process's connection
            assert other.delete_article(ALGAE["id"])
        # A reader of its own, without the engine's own exclusion of deleted ids.
        index = local_index(settings, encoder)
        wait_until(lambda: ALGAE["id"] not in article_ids(ask(index.open(), encoder, ALGAE_Q)))
    finally:
        engine.close()


def test_an_ingest_in_another_process_is_answered_at_once(
    tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    """`akhbar ingest` indexes what it stored into the delta; a serving engine (which here
    never looks at the store itself) answers it on its next question."""
    settings = settings_for(fresh_home, local={"delta_poll_s": 3600})
    engine = QAEngine(settings, encoder)
    try:
        assert ALGAE["id"] not in article_ids(engine.ask(ALGAE_Q, 5).hits)
        env = {**os.environ, "AKHBAR_HOME": str(fresh_home), "AKHBAR_PRECISION": "fp32"}
        done = subprocess.run(
            [sys.executable, "-m", "akhbar.service.cli", "ingest",
             str(write_jsonl(tmp_path / "a.jsonl", ALGAE))],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "answerable now: 1 articles" in done.stdout
        answer = engine.ask(ALGAE_Q, 3)
        assert answer.hits[0].passage.chunk.article_id == ALGAE["id"]
        assert "+" in answer.index_version
    finally:
        engine.close()


def test_posted_articles_are_answered_without_a_rebuild(fresh_home: Path, settings_for, encoder):
    from fastapi.testclient import TestClient

    from akhbar.service.app import create_app

    settings = settings_for(fresh_home, admin_key="k" * 32, local={"delta_poll_s": 3600})
    engine = QAEngine(settings, encoder)
    try:
        with TestClient(create_app(settings, engine)) as client:
            before = client.get("/readyz").json()["index_version"]
            posted = {k: ALGAE[k] for k in ("title", "text", "url", "outlet", "published")}
            resp = client.post(
                "/v1/articles", json=[posted], headers={"Authorization": "Bearer " + "k" * 32}
            )
            assert resp.status_code == 200 and resp.json()["stored"] == 1, resp.text
            answer = client.post("/v1/ask", json={"question": ALGAE_Q, "k": 3}).json()
            assert answer["index_version"] == f"{before}+1"
            top = answer["passages"][0]
            assert top["citation"]["url"] == ALGAE["url"] and "340 hectares" in top["text"]
    finally:
        engine.close()


def test_a_rebuild_absorbs_the_delta_and_keeps_what_was_committed_meanwhile(
    tmp_path: Path, fresh_home: Path, settings_for, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import akhbar.index.local as local_module

    settings = settings_for(fresh_home)
    run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))], encoder=encoder)
    index = local_index(settings, encoder)
    assert index.current_version().endswith("+1")
    late = {**ALGAE, "id": "fresh-late", "title": "Agadir : un téléphérique de 2 km",
            "text": "Le téléphérique d'Agadir reliera la kasbah au port sur 2 km dès 2027.",
            "url": "https://example.org/late"}  # fmt: skip
    real_build = local_module.build_index

    def build_with_a_commit_during(*args, **kwargs):
        switch = kwargs["switch"]

        def late_switch(name, staging, manifest):
            # Committed (and indexed into the old version's delta) after the build read
            # the store, before it becomes current.
            run_ingest(settings, [str(write_jsonl(tmp_path / "b.jsonl", late))], encoder=encoder)
            return switch(name, staging, manifest)

        return real_build(*args, **{**kwargs, "switch": late_switch})

    monkeypatch.setattr(local_module, "build_index", build_with_a_commit_during)
    report = run_index(settings, encoder)
    assert index.current_version() == f"{report.version}+1"  # the late one, carried over
    reader = index.open()
    assert article_ids(ask(reader, encoder, ALGAE_Q, 1)) == [ALGAE["id"]]
    assert article_ids(ask(reader, encoder, "téléphérique d'Agadir", 1)) == ["fresh-late"]
    assert reader.delta is not None and reader.delta.count == 1  # ALGAE is in the build


def test_a_merge_folds_the_delta_into_a_version_that_answers_the_same(
    tmp_path: Path, home_settings: Settings, encoder, articles, monkeypatch: pytest.MonkeyPatch
) -> None:
    import akhbar.index.local as local_module

    index = local(home_settings, encoder, tmp_path / "index")
    index.build(articles[:40], corpus_checksum="a")
    index.upsert(articles[40:60])
    index.delete([articles[0].id])
    before = index.open()
    want = {q: [h.passage.chunk.id for h in ask(before, encoder, q)] for q in QUESTIONS}
    other = local(home_settings, encoder, tmp_path / "index")  # another writer
    real_merge = local_module.merge_into_staging

    def merge_with_a_write_during(*args, **kwargs):
        out = real_merge(*args, **kwargs)
        other.upsert([as_article(ALGAE)])
        return out

    monkeypatch.setattr(local_module, "merge_into_staging", merge_with_a_write_during)
    report = index.merge()
    assert report is not None and report.chunks == before.count and report.encoded == 0
    assert index.current_version() == f"{report.version}+1"  # the write made meanwhile
    merged = index.open(report.version)  # the version alone, without that write
    assert merged.delta is None and merged.count == before.count
    for q in QUESTIONS:
        got = [h.passage.chunk.id for h in ask(merged, encoder, q)]
        # Before the merge, BM25 still counted the deleted article's passages and the old
        # average length (the delta corrects only IDF), so the tail may move; the head may not.
        assert got[:5] == want[q][:5], q
        assert len(set(got) & set(want[q])) >= 8, q
        assert not any(c.startswith(f"{articles[0].id}#") for c in got)
    assert article_ids(ask(index.open(), encoder, ALGAE_Q, 1)) == [ALGAE["id"]]
    monkeypatch.undo()
    assert index.merge() is not None and "+" not in (index.current_version() or "+")
    assert index.merge() is None  # nothing left to merge


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    point = sys.argv[1]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        name = Path(dst).name
        if (point == "segment" and name.startswith("seg-")) or point == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace

    from akhbar.corpus.store import Store
    from akhbar.pipeline import catch_up_index, open_backend
    from akhbar.service.qa import load_encoder
    from akhbar.settings import Settings

    settings = Settings()
    backend = open_backend(settings, load_encoder(settings))
    if point == "staging":
        from akhbar.index.local.chunktable import ChunkTable

        real_write = ChunkTable.write

        def write(*args, **kwargs):  # the merge's staging folder is written, not switched
            real_write(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        ChunkTable.write = staticmethod(write)
    if point in ("segment", "delta.json"):
        with Store(settings.store_path) as store:
            catch_up_index(backend, store)
    else:
        backend.merge()
    print("not killed")
    """
)


def run_killed(home: Path, point: str) -> None:
    env = {**os.environ, "AKHBAR_HOME": str(home), "AKHBAR_PRECISION": "fp32"}
    done = subprocess.run(
        [sys.executable, "-c", KILLER, point], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr[-2000:])


@pytest.mark.parametrize("point", ["segment", "delta.json"])
def test_a_delta_writer_killed_midway_loses_nothing(
    point: str, tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    settings = settings_for(fresh_home)
    run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))])  # stored only
    index = local_index(settings, encoder)
    version = index.current_version()
    run_killed(fresh_home, point)
    # What the killed writer left is not read: the same version, and it still opens.
    assert index.current_version() == version
    assert ALGAE["id"] not in article_ids(ask(index.open(), encoder, ALGAE_Q, 5))
    with Store(settings.store_path) as store:
        assert catch_up_index(index, store) == 1
    assert index.current_version() == f"{version}+1"
    assert article_ids(ask(index.open(), encoder, ALGAE_Q, 1)) == [ALGAE["id"]]


@pytest.mark.parametrize("point", ["staging", "CURRENT"])
def test_a_merge_killed_midway_leaves_the_version_and_its_delta_serving(
    point: str, tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    settings = settings_for(fresh_home)
    run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))], encoder=encoder)
    index = local_index(settings, encoder)
    version = index.current_version()
    assert version.endswith("+1")
    run_killed(fresh_home, point)
    assert index.current_version() == version
    assert article_ids(ask(index.open(), encoder, ALGAE_Q, 1)) == [ALGAE["id"]]
    report = index.merge()  # the next merge cleans up and completes
    assert report is not None and index.current_version() == report.version
    assert article_ids(ask(index.open(), encoder, ALGAE_Q, 1)) == [ALGAE["id"]]
    assert not list(settings.index_dir.glob(".staging-*"))


def test_a_polled_feed_item_is_answered_without_a_rebuild(
    fresh_home: Path, settings_for, encoder
) -> None:
    """The poller lands items through ingest like any writer; the serving engine follows
    the store, so a new feed item is answerable with no `akhbar index`."""
    from feed_server import Conditional, Story, rss, serving

    from akhbar.corpus.poller import new_feed
    from akhbar.pipeline import feed_poller

    settings = settings_for(fresh_home, allow_private_urls=True)
    body = "\n\n".join(
        [ALGAE["text"]]
        + [
            f"Le chantier, mené en {n} phases, associe des chercheurs de l'université "
            f"Ibn Zohr d'Agadir et des pêcheurs de la région, selon le porteur du projet."
            for n in range(2, 8)
        ]
    )
    story = Story("urn:akhbar-test:tarfaya", ALGAE["title"], body, "Tue, 01 Apr 2025 08:00:00 GMT")
    engine = QAEngine(settings, encoder)
    try:
        assert ALGAE["title"] not in {h.passage.title for h in engine.ask(ALGAE_Q, 5).hits}
        with serving() as server, Store(settings.store_path) as store:
            server.routes["/rss"] = Conditional(lambda: rss([(story, None)]))
            assert store.add_feed(new_feed(server.url("/rss"), "Fresh Wire", 900.0, time.time()))
            results = feed_poller(settings, store).poll_due()
        assert [r.new_items for r in results] == [1], results
        wait_until(lambda: engine.ask(ALGAE_Q, 3).hits[0].passage.title == ALGAE["title"])
        assert "340 hectares" in engine.ask(ALGAE_Q, 3).hits[0].passage.chunk.text
    finally:
        engine.close()


def metric(metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_serving_engine_merges_a_due_delta_and_survives_a_failed_merge(
    tmp_path: Path,
    fresh_home: Path,
    settings_for,
    encoder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The policy (one passage here) makes the follower merge in the background. The first
    merge fails (injected): serving goes on from the version and its delta, the failure
    is logged and counted, the follower keeps following, and the merge is tried again; the
    second one runs while a question is answered, and the merged version answers alike."""
    import akhbar.index.local as local_module
    from akhbar.service.metrics import Metrics

    settings = settings_for(
        fresh_home,
        local={"delta_poll_s": 0.1, "delta_max_chunks": 1, "delta_merge_retry_s": 0.5},
    )
    built = local_index(settings, encoder).current_version()
    real_merge = local_module.merge_into_staging
    during: list = []
    failed = []

    def merge(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise OSError("no space left on device (injected)")
        during.append(engine.ask(ALGAE_Q, 3))  # a question while the merge runs
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(local_module, "merge_into_staging", merge)
    metrics = Metrics()
    engine = QAEngine(settings, encoder)
    engine.add_index_listener(metrics)
    try:
        run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))])  # stored only
        wait_until(lambda: metric(metrics, "akhbar_index_merges_total", outcome="merged") == 1)
        assert failed and len(during) == 1
        assert metric(metrics, "akhbar_index_merges_total", outcome="failed") == 1
        assert any("delta merge failed" in r.getMessage() for r in caplog.records)
        # Answered from the delta while merging, from the merged version after.
        assert during[0].index_version.startswith(f"{built}+")
        after = engine.ask(ALGAE_Q, 3)
        assert after.index_version != built and "+" not in after.index_version
        assert article_ids(after.hits) == article_ids(during[0].hits)
        assert after.hits[0].passage.chunk.article_id == ALGAE["id"]
        assert after.hits[0].passage.chunk.text == during[0].hits[0].passage.chunk.text
        # The follower still follows: a later article is answered, then merged too.
        late = {**ALGAE, "id": "fresh-late", "title": "Agadir : un téléphérique de 2 km",
                "text": "Le téléphérique d'Agadir reliera la kasbah au port sur 2 km dès 2027.",
                "url": "https://example.org/late"}  # fmt: skip
        run_ingest(settings, [str(write_jsonl(tmp_path / "b.jsonl", late))])
        wait_until(lambda: metric(metrics, "akhbar_index_merges_total", outcome="merged") == 2)
        answer = engine.ask("téléphérique d'Agadir", 1)
        assert article_ids(answer.hits) == ["fresh-late"] and "+" not in answer.index_version
        assert metric(metrics, "akhbar_index_catch_ups_total", outcome="indexed") >= 2
        assert metric(metrics, "akhbar_index_merge_seconds_count") == 2
    finally:
        engine.close()


def test_metrics_report_the_delta_and_its_catch_ups(
    tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    from fastapi.testclient import TestClient

    from akhbar.service.app import create_app

    settings = settings_for(fresh_home, local={"delta_poll_s": 3600})
    engine = QAEngine(settings, encoder)

    def scrape(client) -> dict[str, float]:
        text = client.get("/metrics").text
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("akhbar_index_")
        }

    try:
        with TestClient(create_app(settings, engine)) as client:
            m = scrape(client)
            assert m["akhbar_index_delta_chunks"] == 0 and m["akhbar_index_delta_segments"] == 0
            assert m["akhbar_index_delta_behind_changes"] == 0
            assert m["akhbar_index_delta_age_seconds"] == 0
            run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))])  # stored only
            m = scrape(client)
            assert m["akhbar_index_delta_behind_changes"] == 1
            assert m["akhbar_index_delta_chunks"] == 0
            assert engine.refresh() == 1
            m = scrape(client)
            assert m["akhbar_index_delta_behind_changes"] == 0
            assert m["akhbar_index_delta_chunks"] == 1 and m["akhbar_index_delta_segments"] == 1
            assert 0 <= m["akhbar_index_delta_age_seconds"] < 3600
            assert m['akhbar_index_catch_ups_total{outcome="indexed"}'] == 1
            assert m["akhbar_index_catch_up_seconds_count"] == 1
            assert engine.refresh() == 0  # nothing new: not counted as a catch-up
            assert scrape(client)['akhbar_index_catch_ups_total{outcome="indexed"}'] == 1
    finally:
        engine.close()


def test_a_merge_prunes_the_change_log_and_a_lagging_index_rebuilds_rather_than_miss_writes(
    tmp_path: Path, fresh_home: Path, settings_for, encoder
) -> None:
    """After a merge the store forgets the changes the new version holds. Another index
    on the same store, left at an older watermark, would find no row telling it of a
    delete and an ingest made meanwhile: it sees the gap and rebuilds from the store."""
    from akhbar.corpus.store import ChangesPrunedError

    settings = settings_for(fresh_home)
    index = local_index(settings, encoder)
    lagging_root = tmp_path / "lagging"
    shutil.copytree(settings.index_dir, lagging_root, symlinks=True)
    with Store(settings.store_path) as store:
        gone = next(a for a in store.iter_articles() if a.kind == "article")
        assert store.delete_article(gone.id)
        run_ingest(settings, [str(write_jsonl(tmp_path / "a.jsonl", ALGAE))], store=store)
        last = store.change_seq()
        assert index.catch_up(store) == 2
        report = index.merge()
        assert report is not None
        index.catch_up(store)  # the first catch-up on the new version prunes
        assert store.changes_after(last) == ([], last)
        with pytest.raises(ChangesPrunedError):
            store.changes_after(last - 1)
        lagging = local(settings, encoder, lagging_root)
        before = lagging.current_version()
        lagging.catch_up(store)
    assert lagging.current_version() != before  # rebuilt, not caught up from nothing
    reader, served = lagging.open(), index.open()
    assert reader.count == served.count
    assert article_ids(ask(reader, encoder, ALGAE_Q, 1)) == [ALGAE["id"]]
    assert gone.id not in article_ids(ask(reader, encoder, gone.title, 10))
    assert gone.id not in article_ids(ask(served, encoder, gone.title, 10))
