import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from akhbar.corpus.ingest import clean_text, ingest
from akhbar.corpus.models import RawItem
from akhbar.corpus.sources import Rejection, iter_sources
from akhbar.corpus.store import Store

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "data" / "sample"
WIKINEWS = [json.loads(line) for line in (SAMPLE / "frwikinews_2012.jsonl").open(encoding="utf-8")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "corpus.db") as s:
        yield s


def _article(i: int = 0, **changes: str) -> RawItem:
    row = WIKINEWS[i]
    fields = {"title": row["title"], "body": row["body"], "source": "test"}
    fields.update(changes)
    return RawItem(**fields)  # type: ignore[arg-type]


def test_clean_text() -> None:
    assert clean_text("  a\u00a0\u00a0b\x00c\r\n\r\n\r\n\r\nd\t e \u200b") == "a bc\n\nd e"
    assert clean_text("Cafe\u0301") == "Café"  # NFC


def test_store_and_get(store: Store) -> None:
    item = _article(0, url="https://x.example/1", outlet="Wikinews")
    report = ingest(store, [item])
    assert (report.stored, report.total) == (1, 1)
    [article] = list(store.iter_articles())
    assert article.id.startswith("a-") and article.language == "fr"
    assert store.get_article(article.id) == article
    assert store.get_article("nope") is None
    assert article.text == clean_text(item.body)
    assert article.title == item.title


def test_exact_duplicate_linked_to_first(store: Store) -> None:
    first = _article(0, url="https://a.example/1")
    copy = _article(0, url="https://b.example/copy", body=WIKINEWS[0]["body"].upper() + "  ")
    report = ingest(store, [first, copy])
    assert (report.stored, report.duplicate) == (1, 1)
    articles = {a.url: a for a in store.iter_articles(include_duplicates=True)}
    assert articles["https://b.example/copy"].duplicate_of == articles["https://a.example/1"].id
    assert store.count_articles() == 1
    assert store.count_articles(include_duplicates=True) == 2
    assert [a.url for a in store.iter_articles()] == ["https://a.example/1"]


def test_near_duplicate_small_edits(store: Store) -> None:
    body = WIKINEWS[1]["body"]
    edited = body.replace("  ", " ").replace(".", " !", 1).replace(" le ", " un ", 2) + " (AFP)"
    assert edited != body
    other = WIKINEWS[2]["body"]
    report = ingest(
        store,
        [
            _article(1, url="https://a.example/orig"),
            _article(1, url="https://b.example/edit", body=edited),
            _article(2, url="https://c.example/other", body=other),
        ],
    )
    assert (report.stored, report.duplicate) == (2, 1)
    edit = next(a for a in store.iter_articles(True) if a.url == "https://b.example/edit")
    orig = next(a for a in store.iter_articles(True) if a.url == "https://a.example/orig")
    assert edit.duplicate_of == orig.id


def test_different_short_headlines_never_merged(store: Store) -> None:
    heads = [
        "Akhannouch : 1,2 million d'élèves bénéficient des activités sportives scolaires",
        "Akhannouch : 1,3 million d'élèves bénéficient des activités sportives scolaires",
        "Akhannouch : le succès sportif du Maroc, fruit d'une vision stratégique",
    ]
    items = [RawItem(title=h, body=h, source="t", kind="headline") for h in heads]
    items.append(RawItem(title=heads[0] + " ", body=heads[0], source="u", kind="headline"))
    report = ingest(store, items)
    assert (report.stored, report.duplicate, report.unchanged) == (3, 0, 1)


def test_reingest_is_noop_and_update_is_stored(store: Store) -> None:
    items = [_article(i) for i in range(5)]
    ingest(store, items)
    before = store.checksum()
    again = ingest(store, [_article(i) for i in range(5)])
    assert (again.unchanged, again.stored, again.total) == (5, 0, 5)
    assert store.checksum() == before
    changed = ingest(store, [_article(0, body=WIKINEWS[0]["body"] + " Mise à jour.")])
    assert changed.stored == 1
    assert store.checksum() != before
    assert store.count_articles() == 5


def test_rejections(store: Store) -> None:
    items: list[RawItem | Rejection] = [
        RawItem(title="", body=" \n\t ", source="empty"),
        RawItem(title="Big", body="mot " * 300_000, source="big"),
        Rejection("feed.xml", "not a readable feed"),
        RawItem(title="Titre seul", body="", source="title-only"),
    ]
    seen: list[str] = []
    report = ingest(store, items, on_item=seen.append)
    assert (report.rejected, report.stored) == (3, 1)
    assert seen == ["rejected", "rejected", "rejected", "stored"]
    assert [s for s, _ in report.reasons] == ["empty", "big", "feed.xml"]
    assert [e.outcome for e in store.ingest_log()] == seen
    assert next(store.iter_articles()).kind == "headline"


def test_delete_promotes_duplicate(store: Store) -> None:
    ingest(store, [_article(0, url="https://a/1"), _article(0, url="https://b/2")])
    first = next(store.iter_articles())
    assert store.delete_article(first.id)
    assert not store.delete_article(first.id)
    [heir] = list(store.iter_articles(include_duplicates=True))
    assert heir.url == "https://b/2" and heir.duplicate_of is None


def test_rollback_leaves_store_consistent(store: Store) -> None:
    ingest(store, [_article(0)])
    before = store.checksum()
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        conn.execute("DELETE FROM articles")
        conn.execute("INSERT INTO ingest_log (source, outcome, ts) VALUES ('x', 'bogus', 'now')")
    assert store.checksum() == before


def test_threads_share_store(store: Store) -> None:
    ingest(store, [_article(i) for i in range(10)])
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                assert store.count_articles() == 10
                assert len(list(store.iter_articles())) == 10
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_bundled_sample_ingest(tmp_path: Path) -> None:
    with Store(tmp_path / "c.db") as store:
        report = ingest(store, iter_sources([str(SAMPLE)]))
        assert report.total == 149  # 48 headlines + 1 seed article + 100 Wikinews
        assert report.rejected == 0
        assert report.stored + report.duplicate == 149
        assert store.count_articles(include_duplicates=True) == 149
        assert store.count_articles() == report.stored
        langs = [a.language for a in store.iter_articles() if a.kind == "headline"]
        assert sorted(langs).count("es") == 2 and len(langs) == 48
        seed = next(a for a in store.iter_articles() if a.outlet == "Les ECO")
        assert seed.title == "Intelligence artificielle : un prompt Made in Morocco"
        assert seed.published is not None and seed.published.isoformat() == "2026-01-13"
        assert seed.language == "fr" and "500 MW" in seed.text
        checksum = store.checksum()
        again = ingest(store, iter_sources([str(SAMPLE)]))
        assert again.unchanged == 149 and store.checksum() == checksum
        ids = [a.id for a in store.iter_articles(include_duplicates=True)]
        assert ids == sorted(ids)
