"""The hand-written eval set: schema, proportions, and gold answers against the raw texts.

Texts are rebuilt here from the raw sample files, not through the corpus package, so this
test holds whatever state the parsers are in.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from akhbar.corpus.models import RawItem, make_article_id
from akhbar.eval.dataset import (
    DEFAULT_EVAL_SET,
    EvalItem,
    EvalSetError,
    check_gold,
    load_eval_set,
    qrels_from_items,
)
from akhbar.eval.distractors import distractor_texts, iter_distractors
from akhbar.eval.indexing import build_sample_index

SAMPLE = Path(__file__).resolve().parents[1] / "corpus" / "data" / "sample"
SEED_TITLE = "Intelligence artificielle : un prompt Made in Morocco"


def _raw_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    with (SAMPLE / "frwikinews_2012.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            lead = row.get("lead")
            texts[row["id"]] = f"{lead}\n\n{row['body']}" if lead else row["body"]
    raw = (SAMPLE / "seed_page.txt").read_text(encoding="utf-8")
    ticker = raw.splitlines()[0]
    for part in re.split(r"\s{2,}", ticker.strip()):
        headline = " ".join(part.split())
        if headline:
            item = RawItem(title=headline, body="", source="", kind="headline")
            texts[make_article_id(item)] = headline
    # The article's extent on the page is the parser's business; the raw file is enough
    # to prove the answer is there.
    seed = RawItem(title=SEED_TITLE, body="", source="", kind="article", outlet="Les ECO")
    texts[make_article_id(seed)] = raw
    # The harder corpus's paragraphs (bundled benchmarks): the Spanish-article questions'
    # gold texts.
    texts.update(distractor_texts())
    return texts


@pytest.fixture(scope="module")
def items() -> list[EvalItem]:
    return load_eval_set(DEFAULT_EVAL_SET)


def test_size_and_languages(items: list[EvalItem]) -> None:
    assert len(items) >= 170
    share = {lang: n / len(items) for lang, n in Counter(i.language for i in items).items()}
    assert share["es"] >= 0.35
    assert share["en"] >= 0.25
    assert share["fr"] > 0


def test_coverage(items: list[EvalItem]) -> None:
    kinds = Counter(i.kind for i in items)
    assert sum(not i.answerable for i in items) >= 15
    assert kinds["headline"] >= 25
    gold = Counter(g for i in items for g in i.gold_article_ids)
    assert sum(1 for g in gold if g.startswith("frwikinews-")) >= 50


def test_spanish_headlines_asked_in_french(items: list[EvalItem]) -> None:
    texts = _raw_texts()
    spanish = {k for k, t in texts.items() if t.startswith(("Sáhara:", "Suspensión"))}
    assert len(spanish) == 2
    asked_fr = {g for i in items if i.language == "fr" for g in i.gold_article_ids}
    assert spanish <= asked_fr


def test_every_answer_is_in_its_gold_text(items: list[EvalItem]) -> None:
    assert check_gold(items, _raw_texts().get) == []


def test_qrels(items: list[EvalItem]) -> None:
    qrels = qrels_from_items(items)
    assert len(qrels) == sum(i.answerable for i in items)
    assert all(v == 1 for rel in qrels.values() for v in rel.values())


def test_check_gold_reports_problems() -> None:
    item = EvalItem(
        id="x",
        question="Quoi ?",
        language="fr",
        answerable=True,
        gold_article_ids=["a", "b"],
        answer="42",
        kind="number",
    )
    problems = check_gold([item], {"a": "rien"}.get)
    assert len(problems) == 2 and "missing" in problems[0] and "not in" in problems[1]


@pytest.mark.parametrize(
    "row",
    [
        {"answerable": True, "gold_article_ids": [], "answer": "x", "kind": "name"},
        {"answerable": False, "gold_article_ids": ["a"], "answer": "", "kind": "unanswerable"},
        {"answerable": False, "gold_article_ids": [], "answer": "", "kind": "name"},
        {
            "answerable": True,
            "gold_article_ids": ["a"],
            "answer": "x",
            "kind": "name",
            "language": "de",
        },
    ],
)
def test_invalid_rows_rejected(tmp_path: Path, row: dict[str, object]) -> None:
    base = {"id": "q1", "question": "Une question ?", "language": "fr"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(base | row) + "\n", encoding="utf-8")
    with pytest.raises(EvalSetError):
        load_eval_set(path)


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    row = {
        "id": "q1",
        "question": "Une question ?",
        "language": "fr",
        "answerable": False,
        "gold_article_ids": [],
        "answer": "",
        "kind": "unanswerable",
    }
    path = tmp_path / "dup.jsonl"
    path.write_text((json.dumps(row) + "\n") * 2, encoding="utf-8")
    with pytest.raises(EvalSetError, match="duplicate id"):
        load_eval_set(path)


# --- the harder corpus ------------------------------------------------------------------------


def test_harder_corpus_distractors_load() -> None:
    texts = distractor_texts()
    assert len(texts) >= 1000
    by_source = Counter(k.split("-")[0] for k in texts)
    assert by_source["piaf"] >= 700 and by_source["xquad"] >= 240
    assert all(t.strip() and not t.startswith("\ufeff") for t in texts.values())


def test_spanish_article_questions(items: list[EvalItem]) -> None:
    """At least 100 answerable questions over the Spanish paragraphs, asked in all three
    languages, each answer string inside its one gold paragraph."""
    texts = distractor_texts()
    spanish = [i for i in items if any(g.startswith("xquad-es-") for g in i.gold_article_ids)]
    assert len(spanish) >= 100
    assert {i.language for i in spanish} == {"fr", "es", "en"}
    assert min(Counter(i.language for i in spanish).values()) >= 25
    for item in spanish:
        (gold,) = item.gold_article_ids
        assert item.answer in texts[gold], item.id


def test_enough_unanswerable_questions_to_calibrate_by_folds(items: list[EvalItem]) -> None:
    assert sum(not i.answerable for i in items) >= 60


def test_harder_corpus_is_indexed_beside_the_sample(
    items: list[EvalItem], sample_settings, encoder, tmp_path: Path
) -> None:
    """The path `akhbar eval` runs, on three distractors: they are indexed with the sample
    and a Spanish-article question finds its paragraph, answer included."""
    from itertools import islice

    from akhbar.corpus.language import detect_language
    from akhbar.index.answers import top_hits

    extra = list(islice(iter_distractors(), 3))
    reader, languages = build_sample_index(sample_settings, encoder, tmp_path / "h", extra=extra)
    try:
        assert languages["xquad-es-00-0"] == "es" and len(languages) > 100
        item = next(i for i in items if i.gold_article_ids == ["xquad-es-00-0"])
        vec = encoder.encode_queries([item.question])[0]
        candidates = reader.search(vec, item.question, 5)
        hits = top_hits(reader, candidates, item.question, detect_language(item.question), vec, 5)
        assert hits[0].passage.chunk.article_id == "xquad-es-00-0"
        assert item.answer in hits[0].passage.chunk.text
    finally:
        reader.close()
