"""Benchmark loaders over the bundled data only (never the shared full copies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from akhbar.eval.benchmarks import (
    BUNDLED_DIR,
    ENV_VAR,
    XQUAD_R_LANGUAGES,
    XQUAD_TASKS,
    Benchmark,
    load_piaf,
    load_xquad,
    load_xquad_r,
    resolve_data_dir,
)

MINI = BUNDLED_DIR / "xquad-r-mini"


def _sane(b: Benchmark) -> None:
    assert b.queries and b.docs
    assert set(b.qrels) == set(b.queries)
    for rel in b.qrels.values():
        assert rel and set(rel) <= set(b.docs)
        assert all(g == 1 for g in rel.values())
    assert all(text.strip() and not text.startswith("\ufeff") for text, _ in b.docs.values())


@pytest.mark.parametrize(("q_lang", "d_lang"), XQUAD_TASKS)
def test_xquad_tasks(q_lang: str, d_lang: str) -> None:
    b = load_xquad(q_lang, d_lang, data_dir=BUNDLED_DIR / "xquad", limit=50)
    _sane(b)
    assert len(b.docs) == 240 and len(b.queries) == 50
    assert {lang for _, lang in b.docs.values()} == {d_lang}
    assert {lang for _, lang in b.queries.values()} == {q_lang}


def test_xquad_is_parallel() -> None:
    es = load_xquad("es", "es", limit=30)
    en = load_xquad("en", "es", limit=30)
    assert es.qrels == en.qrels  # same id -> same Spanish paragraph whatever the question language
    assert es.queries.keys() == en.queries.keys()
    assert es.queries != en.queries


def test_xquad_answer_in_gold_paragraph() -> None:
    b = load_xquad("es", "es", limit=40)
    # "Panthers" names the team the first Super Bowl paragraph is about.
    first = next(iter(b.qrels.values()))
    assert "Panthers" in b.docs[next(iter(first))][0]


def test_piaf() -> None:
    b = load_piaf(limit=25)
    _sane(b)
    assert len(b.docs) == 761 and len(b.queries) == 25
    assert {lang for _, lang in b.docs.values()} == {"fr"}
    assert load_piaf(limit=25).queries == b.queries  # deterministic


def test_xquad_r_mini() -> None:
    b = load_xquad_r(data_dir=MINI)
    _sane(b)
    assert b.metric == "map@20"
    assert {lang for _, lang in b.docs.values()} == set(XQUAD_R_LANGUAGES)
    # Every question has one relevant sentence per pool language.
    for qid, rel in b.qrels.items():
        assert len(rel) == 11
        assert {b.docs[d][1] for d in rel} == set(XQUAD_R_LANGUAGES)
        assert b.queries[qid][1] == qid.split("-")[0]
    # The same question asked in two languages shares its relevant set.
    en = {q.split("-", 1)[1]: r for q, r in b.qrels.items() if q.startswith("en-")}
    es = {q.split("-", 1)[1]: r for q, r in b.qrels.items() if q.startswith("es-")}
    assert en == es and len(en) > 5


def test_xquad_r_answer_sentence() -> None:
    b = load_xquad_r(data_dir=MINI, languages=("en", "es"), limit=3)
    assert len(b.queries) == 6
    # First XQuAD question: "How many points did the Panthers defense surrender?" -> 308.
    rel = b.qrels["en-56beb4343aeaaa14008c925b"]
    assert all("308" in b.docs[d][0] for d in rel)


def test_xquad_r_query_languages_subset() -> None:
    b = load_xquad_r(data_dir=MINI, query_languages=("es",))
    assert {lang for _, lang in b.queries.values()} == {"es"}
    with pytest.raises(ValueError):
        load_xquad_r(data_dir=MINI, languages=("en",), query_languages=("es",))


def test_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_data_dir("xquad") == BUNDLED_DIR / "xquad"
    (tmp_path / "xquad-r").mkdir()
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert resolve_data_dir("xquad-r") == tmp_path / "xquad-r"
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        resolve_data_dir("xquad-r")
    with pytest.raises(ValueError):
        load_xquad("fr", "es")
    with pytest.raises(ValueError):
        load_piaf(limit=0)
