"""Concurrent questions share one encoder call.

Encoding dominates the cost of a new question, and the encoder does a batch of questions in
less time than the same questions one by one (its weights are read once per batch). So
requests hand their question to one encoding thread: while it encodes, the questions that
arrive wait, and its next call takes them. Nothing waits for a batch to fill: a question
that arrives alone is encoded at once, so a quiet server answers as fast as before. The
encoder releases the GIL, so the request threads meanwhile do the rest of their work
(language detection) on the other core.

Which waiting questions make the next batch:

- The oldest waiting question always goes, so no question waits for ever, however many
  others keep arriving: a question is served, at the latest, once every question older
  than it has been.
- The other places go to the cheapest waiting questions first (cost = tokens, from
  ``cost``), while the batch stays within ``max_batch`` questions and ``max_batch_tokens``
  padded tokens: questions × the longest one's tokens, because the encoder pads a batch to
  its longest question. So a batch's time is bounded, long questions are spread over
  several batches, and a short question that arrives while long ones wait goes in the
  next batch instead of queueing behind all of them.

This is shortest-first with the oldest as an anchor: one sort of the waiting questions per
batch, no timers, no second queue. A single question's cost is bounded by the encoder's
own token cap, so the anchor cannot blow the budget by much.

One question that makes the encoder raise (bad input the boundary missed, say) must not
fail the questions that shared its batch: a failed batch is encoded again one question at
a time, and only the questions that still fail get the error.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

_STOP = object()


def _one_per_question(_question: str) -> int:
    return 1


@dataclass
class _Waiting:
    question: str
    cost: int
    futures: list[Future[np.ndarray]] = field(default_factory=list)


class QuestionBatcher:
    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = 32,
        cost: Callable[[str], int] | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        """``cost(question)`` is its token count (default 1 a question, so only
        ``max_batch`` bounds a batch); ``max_batch_tokens`` bounds questions × the
        longest one's cost (None: no bound beyond ``max_batch``)."""
        self._encode = encode
        self._max_batch = max_batch
        self._cost = cost or _one_per_question
        self._max_tokens = max_batch_tokens
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self.batches = 0  # encoder calls that succeeded, and the questions they answered
        self.questions = 0
        self._thread = threading.Thread(target=self._run, name="akhbar-encoder", daemon=True)
        self._thread.start()

    def submit(self, question: str) -> Future[np.ndarray]:
        """The question's vector, once its batch is encoded."""
        if self._closed:
            raise RuntimeError("the question batcher is closed")
        future: Future[np.ndarray] = Future()
        self._queue.put((question, future))
        return future

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            # Questions that raced with close must not wait forever.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
                if item is not _STOP:
                    item[1].set_exception(RuntimeError("the question batcher is closed"))  # type: ignore[index]

    # -- the encoder thread ------------------------------------------------------------
    def _run(self) -> None:
        # Waiting questions by text, in order of first arrival: the same question asked by
        # several clients at once is encoded once.
        waiting: OrderedDict[str, _Waiting] = OrderedDict()
        stop = False
        while True:
            if not waiting:
                if stop:
                    return
                item = self._queue.get()
                if item is _STOP:
                    return
                self._add(waiting, item)  # type: ignore[arg-type]
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True  # still encode what already waits, then end
                else:
                    self._add(waiting, item)  # type: ignore[arg-type]
            if waiting:
                self._encode_batch(self._next_batch(waiting))

    def _add(
        self, waiting: OrderedDict[str, _Waiting], item: tuple[str, Future[np.ndarray]]
    ) -> None:
        question, future = item
        entry = waiting.get(question)
        if entry is None:
            try:
                cost = max(1, int(self._cost(question)))
            except Exception as exc:
                future.set_exception(exc)
                return
            entry = waiting[question] = _Waiting(question, cost)
        entry.futures.append(future)

    def _next_batch(self, waiting: OrderedDict[str, _Waiting]) -> list[_Waiting]:
        """The oldest question, then the cheapest others that fit the budget."""
        entries = iter(waiting.values())
        oldest = next(entries)
        batch = [oldest]
        longest = oldest.cost
        # sorted() is stable: among equal costs, arrival order.
        for entry in sorted(entries, key=lambda e: e.cost):
            if len(batch) >= self._max_batch:
                break
            padded = (len(batch) + 1) * max(longest, entry.cost)
            if self._max_tokens is not None and padded > self._max_tokens:
                break  # the rest cost at least as much
            batch.append(entry)
            longest = max(longest, entry.cost)
        for entry in batch:
            del waiting[entry.question]
        return batch

    def _encode_batch(self, batch: list[_Waiting]) -> None:
        texts = [e.question for e in batch]
        try:
            vectors = self._encode(texts)
            if len(vectors) != len(texts):
                raise RuntimeError(f"the encoder gave {len(vectors)} vectors for {len(texts)}")
        except Exception as exc:
            if len(batch) == 1:
                log.exception("encoding a question failed")
                for future in batch[0].futures:
                    future.set_exception(exc)
                return
            log.warning(
                "encoding %d questions failed (%r): encoding them one by one", len(batch), exc
            )
            for entry in batch:
                self._encode_batch([entry])
            return
        for entry, vector in zip(batch, vectors, strict=True):
            for future in entry.futures:
                future.set_result(vector)
        self.batches += 1
        self.questions += sum(len(e.futures) for e in batch)
