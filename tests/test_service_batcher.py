"""Concurrent questions share encoder calls; each still gets its own vector and answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batcher import QuestionBatcher

QUESTIONS = [
    "Quelle capacité pour le data center de Dakhla ?",
    "¿Por qué se suspendió el tráfico marítimo en Tánger Med?",
    "Which country granted political asylum to Julian Assange?",
    "Combien d'emplois PSA va-t-il supprimer ?",
    "¿Quién ganó las elecciones presidenciales en Egipto?",
]


class GatedEncoder:
    """The real encoder, recording each call; the first call waits for a signal, so the
    questions sent meanwhile pile up as they do under load."""

    def __init__(self, encoder) -> None:  # noqa: ANN001 - the session's real encoder
        self.encoder = encoder
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not self.calls:
            self.entered.set()
            self.release.wait(timeout=30)
        self.calls.append(list(texts))
        if self.fail:
            raise RuntimeError("encoder exploded")
        return self.encoder.encode_queries(texts)


def _submit_while_busy(batcher: QuestionBatcher, gate: GatedEncoder, questions: list[str]):
    """The first question goes alone; the others arrive while the encoder works on it."""
    futures = [batcher.submit(questions[0])]
    assert gate.entered.wait(timeout=30)
    futures += [batcher.submit(q) for q in questions[1:]]
    gate.release.set()
    return futures


def test_waiting_questions_are_encoded_in_one_call(encoder) -> None:
    gate = GatedEncoder(encoder)
    batcher = QuestionBatcher(gate, max_batch=32)
    try:
        futures = _submit_while_busy(batcher, gate, QUESTIONS)
        vectors = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    # The first question alone (nothing waited for it), then all the others together.
    assert gate.calls == [QUESTIONS[:1], QUESTIONS[1:]]
    assert batcher.batches == 2 and batcher.questions == len(QUESTIONS)
    alone = encoder.encode_queries(QUESTIONS)
    for got, want in zip(vectors, alone, strict=True):
        assert float(got @ want) > 0.999


def test_batch_size_is_bounded_and_duplicates_encoded_once(encoder) -> None:
    gate = GatedEncoder(encoder)
    batcher = QuestionBatcher(gate, max_batch=3)
    asked = [QUESTIONS[0], QUESTIONS[1], QUESTIONS[1], QUESTIONS[2], QUESTIONS[3]]
    try:
        futures = _submit_while_busy(batcher, gate, asked)
        vectors = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert gate.calls == [[QUESTIONS[0]], [QUESTIONS[1], QUESTIONS[2]], [QUESTIONS[3]]]
    assert np.array_equal(vectors[1], vectors[2])


def test_an_encoder_error_reaches_every_waiting_question_and_the_batcher_goes_on(
    encoder,
) -> None:
    gate = GatedEncoder(encoder)
    gate.fail = True
    batcher = QuestionBatcher(gate, max_batch=32)
    try:
        futures = _submit_while_busy(batcher, gate, QUESTIONS[:3])
        for f in futures:
            with pytest.raises(RuntimeError, match="exploded"):
                f.result(timeout=60)
        gate.fail = False
        assert batcher.submit(QUESTIONS[0]).result(timeout=60).shape == (encoder.dimension,)
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(QUESTIONS[0])


def test_concurrent_asks_get_the_answers_of_serial_asks(engine) -> None:
    questions = [f"{q} ({i})" for i in range(3) for q in QUESTIONS]
    before = engine._batcher.batches  # noqa: SLF001 - test probe
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: engine.ask(q, k=3), questions))
    batches = engine._batcher.batches - before  # noqa: SLF001
    searcher = engine.searcher()
    for q, answer in zip(questions, together, strict=True):
        language, shared = engine.understand(q)  # the vector the batch gave it
        alone = engine.encoder.encode_queries([q])[0]
        assert float(shared @ alone) > 0.999
        (top,) = searcher.search(alone, q, language, 1)
        assert answer.passages[0].id == top.row.chunk.id
    # Eight threads, fifteen new questions: some had to share a call.
    assert 1 <= batches < len(questions)
