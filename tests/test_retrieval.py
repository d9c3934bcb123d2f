"""Retrieval behaviour on the real sample index: highlight, filters, abstention, modes."""

from __future__ import annotations

from datetime import date

import pytest

from akhbar.index.answers import top_hits
from akhbar.index.base import Filters
from akhbar.service.qa import QAEngine
from akhbar.service.schemas import AskResponse, ask_response


def ask(engine: QAEngine, *args) -> AskResponse:
    return ask_response(engine.ask(*args))


def test_highlight_marks_the_answer_sentence(engine) -> None:
    res = ask(engine, "Quelle capacité pour le data center de Dakhla ?", 3)
    top = res.passages[0]
    sentence = top.text[top.highlight.start : top.highlight.end]
    assert "500 MW" in sentence
    assert 0 <= top.highlight.start < top.highlight.end <= len(top.text)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Which airline operated the MD-83 that crashed in Lagos in June 2012?", "Dana Air"),
        ("¿Cuántos empleos suprimirá Hewlett-Packard en Francia de aquí a 2014?", "520 postes"),
    ],
)
def test_cross_lingual_highlight_marks_the_answer_sentence(
    engine, question: str, answer: str
) -> None:
    # English and Spanish questions over French passages of several sentences: the
    # sentence vectors find the one that answers, where shared words alone did not.
    top = ask(engine, question, 1).passages[0]
    assert answer in top.text
    assert answer in top.text[top.highlight.start : top.highlight.end]


def test_cross_lingual_question_finds_french_answer(engine) -> None:
    res = ask(engine, "What capacity is planned for the Dakhla data center?", 3)
    assert res.question_language == "en"
    assert any("500 MW" in p.text for p in res.passages)


def test_language_filter(engine) -> None:
    res = ask(engine, "trafic maritime Tanger", 5, Filters(languages=("es",)))
    assert res.passages and all(p.language == "es" for p in res.passages)
    assert "Tánger Med" in res.passages[0].text


def test_outlet_and_date_filters(engine) -> None:
    res = ask(engine, "intelligence artificielle", 5, Filters(outlets=("les eco",)))
    assert res.passages and all(p.citation.outlet == "Les ECO" for p in res.passages)
    res = ask(engine, "élections", 5, Filters(since=date(2012, 7, 1), until=date(2012, 8, 31)))
    assert res.passages
    for p in res.passages:
        assert p.citation.published is not None
        assert date(2012, 7, 1) <= p.citation.published <= date(2012, 8, 31)
    assert ask(engine, "élections", 5, Filters(since=date(2030, 1, 1))).passages == []


def test_abstains_off_topic_and_answers_on_topic(engine) -> None:
    assert ask(engine, "Quelle capacité pour le data center de Dakhla ?", 3).answerable
    off = ask(engine, "Quelle est la meilleure recette de gâteau au chocolat sans gluten ?", 3)
    assert not off.answerable
    assert off.passages  # still shown, marked as not answering


def test_margin_is_measured_from_the_questions_tenth_best_cosine(engine) -> None:
    question = "Quelle capacité pour le data center de Dakhla ?"
    language, vector = engine.understand(question)
    searcher = engine.searcher()
    candidates = searcher.search(vector, question, 10, mode="dense")
    # Without the sentence rerank, so the hits stand in cosine order.
    hits = top_hits(searcher, candidates, question, language, vector, 10, rerank=False)
    assert [h.dense for h in hits] == sorted((h.dense for h in hits), reverse=True)
    assert abs(hits[9].margin) < 1e-6
    assert abs(hits[0].margin - (hits[0].dense - hits[9].dense)) < 1e-6


def test_no_duplicate_passages(engine) -> None:
    res = ask(engine, "Akhannouch sport", 10)
    texts = [" ".join(p.text.split()).casefold() for p in res.passages]
    assert len(texts) == len(set(texts))
