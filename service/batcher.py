"""Concurrent questions share one encoder call.

Encoding dominates the cost of a new question, and the encoder does a batch of questions in
less time than the same questions one by one (its weights are read once per batch). So
requests hand their question to one encoding thread: while it encodes, the questions that
arrive queue up, and its next call takes all of them. Nothing waits for a batch to fill: a
question that arrives alone is encoded at once, so a quiet server answers as fast as before.
The encoder releases the GIL, so the request threads meanwhile do the rest of their work
(language detection) on the other core.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

log = logging.getLogger(__name__)

_STOP = object()


class QuestionBatcher:
    def __init__(
        self, encode: Callable[[Sequence[str]], np.ndarray], *, max_batch: int = 32
    ) -> None:
        self._encode = encode
        self._max_batch = max_batch
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

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._encode_batch(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _encode_batch(self, batch: list[tuple[str, Future[np.ndarray]]]) -> None:
        # The same question asked by many clients at once is encoded once.
        texts = list(dict.fromkeys(q for q, _ in batch))
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            log.exception("encoding %d questions failed", len(texts))
            for _, future in batch:
                future.set_exception(exc)
            return
        row = {q: i for i, q in enumerate(texts)}
        for q, future in batch:
            future.set_result(vectors[row[q]])
        self.batches += 1
        self.questions += len(batch)
