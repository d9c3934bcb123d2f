"""Concurrent questions share encoder calls; each still gets its own vector and answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from akhbar.index.answers import top_hits
from akhbar.service.batcher import QuestionBatcher

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

    def __init__(self, encoder) -> None:
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
    batcher = QuestionBatcher(gate, max_batch=2)
    asked = [QUESTIONS[0], QUESTIONS[1], QUESTIONS[1], QUESTIONS[2], QUESTIONS[3]]
    try:
        futures = _submit_while_busy(batcher, gate, asked)
        vectors = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    # The repeated question takes one place in a batch, not two.
    assert gate.calls == [[QUESTIONS[0]], [QUESTIONS[1], QUESTIONS[2]], [QUESTIONS[3]]]
    assert np.array_equal(vectors[1], vectors[2])


def test_an_encoder_that_always_fails_fails_every_question_and_the_batcher_goes_on(
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
    before = engine._batcher.batches
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: engine.ask(q, k=3), questions))
    batches = engine._batcher.batches - before
    searcher = engine.searcher()
    for q, answer in zip(questions, together, strict=True):
        language, shared = engine.understand(q)  # the vector the batch gave it
        alone = engine.encoder.encode_queries([q])[0]
        assert float(shared @ alone) > 0.999
        (top,) = top_hits(searcher, searcher.search(alone, q, 1), q, language, alone, 1)
        assert answer.hits[0].passage.chunk.id == top.passage.chunk.id
    # Eight threads, fifteen new questions: some had to share a call.
    assert 1 <= batches < len(questions)


# -- failure isolation and token budgets (a fake encoder: the scheduling, not the model) ------


class FakeEncoder:
    """Gated like GatedEncoder; one vector per text, derived from the text; raises on
    any batch holding a question that contains "BAD", as a tokenizer does on bad input."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not self.calls:
            self.entered.set()
            self.release.wait(timeout=30)
        self.calls.append(list(texts))
        if any("BAD" in t for t in texts):
            raise ValueError("cannot encode that")
        return np.array([self.vector(t) for t in texts])

    @staticmethod
    def vector(text: str) -> np.ndarray:
        return np.array([len(text), sum(map(ord, text)) % 997, 1.0])


def tokens(text: str) -> int:
    """A token count: one per word."""
    return len(text.split())


def _busy_then(batcher: QuestionBatcher, gate: FakeEncoder, first: str, rest: list[str]):
    futures = [batcher.submit(first)]
    assert gate.entered.wait(timeout=30)
    futures += [batcher.submit(q) for q in rest]
    gate.release.set()
    return [f.exception(timeout=30) or f.result() for f in futures]


def test_a_failing_question_fails_alone() -> None:
    gate = FakeEncoder()
    batcher = QuestionBatcher(gate, max_batch=32)
    rest = ["good one", "BAD one", "good two", "good three"]
    try:
        results = _busy_then(batcher, gate, "first", rest)
        # The batcher is still serving afterwards.
        after = batcher.submit("after").result(timeout=30)
    finally:
        batcher.close()
    assert isinstance(results[2], ValueError)
    for q, got in zip(["first", *rest], results, strict=True):
        if q != "BAD one":
            assert np.array_equal(got, FakeEncoder.vector(q)), q
    assert np.array_equal(after, FakeEncoder.vector("after"))
    # The shared call failed, then each question of it was encoded on its own.
    assert gate.calls[1] == rest
    assert sorted(map(tuple, gate.calls[2:6])) == sorted((q,) for q in rest)


def test_a_question_whose_cost_cannot_be_counted_fails_alone() -> None:
    gate = FakeEncoder()

    def cost(text: str) -> int:
        if "BAD" in text:
            raise ValueError("cannot tokenize that")
        return tokens(text)

    batcher = QuestionBatcher(gate, max_batch=32, cost=cost, max_batch_tokens=1000)
    try:
        results = _busy_then(batcher, gate, "first", ["BAD", "fine"])
    finally:
        batcher.close()
    assert isinstance(results[1], ValueError)
    assert np.array_equal(results[2], FakeEncoder.vector("fine"))
    assert ["BAD"] not in gate.calls


LONG = " ".join(["word"] * 64)  # 64 tokens: the encoder's cap


def test_a_short_question_is_not_held_behind_long_ones() -> None:
    gate = FakeEncoder()
    # Four questions at the cap fit a batch; nine long ones wait, then a short one arrives.
    batcher = QuestionBatcher(gate, max_batch=32, cost=tokens, max_batch_tokens=4 * 64)
    longs = [f"{LONG} {i}" for i in range(9)]  # 65 tokens each
    short = "Qui est Thierry Roland ?"
    try:
        results = _busy_then(batcher, gate, "first", [*longs, short])
    finally:
        batcher.close()
    for q, got in zip(["first", *longs, short], results, strict=True):
        assert np.array_equal(got, FakeEncoder.vector(q))
    batches = gate.calls[1:]
    # The short question goes in the very next batch, with the oldest long one.
    assert short in batches[0]
    assert batches[0][0] == longs[0]
    # Every batch keeps to the budget in padded tokens (questions × longest), but for a
    # question alone; the long questions are spread over several batches, in order.
    for b in batches:
        assert len(b) == 1 or len(b) * max(map(tokens, b)) <= 4 * 64
    assert len(batches) >= 3
    assert [q for b in batches for q in b if q != short] == longs


def test_the_oldest_question_is_never_starved_by_cheaper_ones() -> None:
    gate = FakeEncoder()
    batcher = QuestionBatcher(gate, max_batch=4, cost=tokens, max_batch_tokens=4 * 64)
    shorts = [f"short {i}" for i in range(12)]
    try:
        _busy_then(batcher, gate, "first", [LONG, *shorts])
    finally:
        batcher.close()
    # Cheaper questions fill the places, but the long one, oldest, goes first.
    assert gate.calls[1][0] == LONG
    assert [len(c) for c in gate.calls[1:]] == [4, 4, 4, 1]


def test_default_cost_budgets_questions_only() -> None:
    gate = FakeEncoder()
    batcher = QuestionBatcher(gate, max_batch=3)
    asked = [LONG, "a", LONG + " b", "c", "d"]
    try:
        _busy_then(batcher, gate, "first", asked)
    finally:
        batcher.close()
    # One unit a question: arrival order, three at a time.
    assert gate.calls[1:] == [asked[:3], asked[3:]]
