"""Question answering over the current index: what both the HTTP API and the CLI call."""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.corpus.language import warm_up as warm_up_language_id
from akhbar.corpus.valid_text import first_invalid_character
from akhbar.index.answers import Answer, Hit, top_hits, verdict
from akhbar.index.base import (
    NO_FILTERS,
    DeltaStatus,
    Filters,
    IndexBackend,
    IndexReader,
    IndexStateError,
    NoIndexError,
)
from akhbar.index.encoder import FAST_QUERY_BATCH, Encoder, SentenceTransformerEncoder
from akhbar.index.second_view import SecondQuery, SecondView
from akhbar.pipeline import (
    catch_up_index,
    embeddings_path,
    follows_store,
    merge_due,
    merge_index,
    open_backend,
    open_store,
)
from akhbar.service.batcher import QuestionBatcher
from akhbar.settings import Settings

log = logging.getLogger(__name__)


# Padded tokens one question batch may hold (questions × its longest question's tokens):
# 16 questions at the encoder's 64-token cap, or 32 questions of up to 32 tokens.
QUESTION_BATCH_TOKENS = 1024


class QuestionError(ValueError):
    """A question the service cannot take (empty, too long): a client error."""


def load_encoder(settings: Settings) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(
        settings.model,
        models_dir=settings.models_dir,
        precision=settings.precision,
        device=settings.device,
        batch_size=settings.encode_batch_size,
        threads=settings.threads,
        fast_queries=settings.fast_queries,
    )


@dataclass(frozen=True, slots=True)
class Understood:
    """What a question needs before the search: its language, its vector and, with the
    second view on, its vector in that view."""

    language: str
    vector: np.ndarray
    second: SecondQuery | None = None


class QuestionCache:
    """LRU of what was understood per question: repeats skip detection and the encoders."""

    def __init__(self, size: int = 1024) -> None:
        self._items: OrderedDict[str, Understood] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> Understood | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item: Understood) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class IndexEvents(Protocol):
    """What an engine reports as it follows the store (the app's metrics listen)."""

    def observe_catch_up(self, outcome: str, seconds: float, articles: int) -> None: ...

    def observe_merge(self, outcome: str, seconds: float) -> None: ...


@dataclass
class _Loaded:
    name: str
    searcher: IndexReader


class QAEngine:
    """Holds the encoder, the store and the served index version.

    A new index version (another process's `akhbar index`, or a rebuild job) is picked up
    on the next question: the CURRENT pointer is read on each call (one small file read),
    and the new version is opened before it replaces the old, so no request ever sees a
    half-loaded index.
    """

    def __init__(
        self, settings: Settings, encoder: Encoder | None = None, *, question_cache: int = 1024
    ) -> None:
        """``question_cache``: how many questions' vectors are remembered (0: every ask
        encodes, as a benchmark of first-time questions wants)."""
        self.settings = settings
        self.encoder = encoder or load_encoder(settings)
        self.store = open_store(settings)
        self.index: IndexBackend = open_backend(settings, self.encoder)
        self._loaded: _Loaded | None = None
        self._swap_lock = threading.Lock()
        self._qcache = QuestionCache(question_cache)
        # Batches are budgeted in tokens, so long questions cannot hold short ones up.
        self._batcher = QuestionBatcher(
            self.encoder.encode_queries,
            max_batch=FAST_QUERY_BATCH,
            cost=self.encoder.count_query_tokens,
            max_batch_tokens=QUESTION_BATCH_TOKENS,
        )
        # Loaded here, before the app says ready, not by the first questions in a race.
        warm_up_language_id()
        self._second = SecondView.open(embeddings_path(settings)) if settings.second_view else None
        if self._second is not None:
            self._second.question("warm-up")  # loads its weights now, not on a question
        # Articles deleted while an index that still holds them may be served. Small (one
        # id per deletion) and re-checked against the store, so a re-ingested id comes back.
        self._deleted: set[str] = set()
        self._deleted_lock = threading.Lock()
        # The local backend's delta follows the store: articles another process (the CLI,
        # a poller) committed become answerable here without a rebuild, and a writer that
        # died before indexing what it committed is caught up after.
        self._stop = threading.Event()
        self._refresh_lock = threading.Lock()
        self._merge: threading.Thread | None = None
        # A failed merge is retried after a pause that doubles with each failure in a row
        # (a full disk would otherwise cost a whole merge every poll).
        self._merge_failures = 0
        self._merge_retry_at = 0.0
        self._listeners: list[IndexEvents] = []
        self._follower: threading.Thread | None = None
        if follows_store(self.index):
            self._follower = threading.Thread(
                target=self._follow, name="akhbar-index-follower", daemon=True
            )
            self._follower.start()

    # -- index version -------------------------------------------------------------
    def searcher(self) -> IndexReader:
        name = self.index.current_version()
        loaded = self._loaded
        if loaded is not None and loaded.name == name:
            return loaded.searcher
        with self._swap_lock:
            loaded = self._loaded
            if loaded is not None and loaded.name == name:
                return loaded.searcher
            if name is None:
                raise NoIndexError(
                    f"no index in {self.settings.index_dir}: run `akhbar index` "
                    "(after `akhbar ingest`)"
                )
            searcher = self.index.open(name)
            log.info("serving index version %s (%d chunks)", searcher.version, searcher.count)
            # The old searcher is left to the garbage collector: requests still holding
            # it finish on the version they started with.
            self._loaded = _Loaded(searcher.version, searcher)
            return searcher

    def add_index_listener(self, listener: IndexEvents) -> None:
        self._listeners.append(listener)

    def refresh(self) -> int:
        """Index what the store committed and the index has not read yet (articles read)."""
        with self._refresh_lock:
            t0 = time.perf_counter()
            try:
                done = catch_up_index(self.index, self.store)
            except Exception:
                for listener in self._listeners:
                    listener.observe_catch_up("failed", time.perf_counter() - t0, 0)
                raise
        if done:
            for listener in self._listeners:
                listener.observe_catch_up("indexed", time.perf_counter() - t0, done)
        return done

    def delta_status(self) -> DeltaStatus | None:
        """The served delta's size, age and lag behind the store (None: the backend keeps
        no delta; postgres writes into its served generation)."""
        status = getattr(self.index, "delta_status", None)
        return None if status is None else status(self.store)

    def _follow(self) -> None:
        while not self._stop.wait(self.settings.local.delta_poll_s):
            try:
                self.refresh()
                self._maybe_merge()
            except Exception:
                # The next round retries; questions are answered from what is there.
                log.exception("could not bring the index delta up to date")

    def _maybe_merge(self) -> None:
        """Start a background merge of the delta if one is due, none is running and no
        failure asks to wait."""
        running = self._merge is not None and self._merge.is_alive()
        if running or time.monotonic() < self._merge_retry_at or not merge_due(self.index):
            return
        self._merge = threading.Thread(target=self._run_merge, name="akhbar-merge", daemon=True)
        self._merge.start()

    def _run_merge(self) -> None:
        t0 = time.perf_counter()
        outcome = "failed"
        try:
            report = merge_index(self.index)
            outcome = "merged" if report is not None else "empty"
            self._merge_failures = 0
            if report is not None:
                log.info("delta merged into version %s (%d chunks)", report.version, report.chunks)
        except IndexStateError as exc:  # another process builds or merges: it will do
            outcome = "skipped"
            log.info("delta merge skipped: %s", exc)
        except Exception:
            self._merge_failures += 1
            pause = min(
                self.settings.local.delta_merge_retry_s * 2 ** (self._merge_failures - 1),
                self.settings.local.delta_max_age_s,
            )
            self._merge_retry_at = time.monotonic() + pause
            log.exception(
                "delta merge failed (%d in a row); the version and its delta keep serving, "
                "next try in %.0f s",
                self._merge_failures,
                pause,
            )
        finally:
            for listener in self._listeners:
                listener.observe_merge(outcome, time.perf_counter() - t0)

    def ready(self) -> bool:
        try:
            self.searcher()
        except Exception:
            return False
        return True

    # -- asking ----------------------------------------------------------------------
    def understand(self, question: str) -> tuple[str, np.ndarray]:
        """The question's language and vector."""
        got = self._understand(question)
        return got.language, got.vector

    def _understand(self, question: str) -> Understood:
        """Cached: people repeat questions."""
        cached = self._qcache.get(question)
        if cached is None:
            vector = self._batcher.submit(question)
            # While the encoder thread works: language id and the second view's encoding
            # (the two encoders share the machine's caches and memory, so this hides only
            # part of the view's time: `bench rerank`).
            language = detect_language(question)
            second = None if self._second is None else self._second.query(question, language)
            cached = Understood(language, vector.result(), second)
            self._qcache.put(question, cached)
        return cached

    def check_question(self, question: str) -> str:
        """The question NFKC-normalised with its whitespace collapsed, or QuestionError
        saying what is wrong.

        Runs before anything else reads the question (cache, language id, encoder), so
        text that is not valid Unicode never reaches native code. What goes on is already
        in NFKC form, so the tokenizer's own normalisation cannot make it longer than it
        is (a tokenizer that sized a buffer from the input overflowed on U+FDFA).
        """
        bad = first_invalid_character(question)
        if bad is not None:
            raise QuestionError(
                f"the question contains {bad.describe()}, which text cannot contain; "
                "send valid Unicode text"
            )
        q = " ".join(question.split())
        if not q:
            raise QuestionError("the question is empty")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"the question is {len(question)} characters long; the limit is {limit}"
            )
        # The NFKC form can be many times longer (U+FDFA is 18 characters): the limit
        # holds for that form too.
        normalised = unicodedata.normalize("NFKC", q)
        if len(normalised) > limit:
            raise QuestionError(
                f"the question is {len(normalised)} characters long once Unicode-normalised "
                f"(NFKC); the limit is {limit}"
            )
        return " ".join(normalised.split())

    def ask(self, question: str, k: int = 5, filters: Filters | None = None) -> Answer:
        t0 = time.perf_counter()
        q = self.check_question(question)
        if not 1 <= k <= self.settings.max_k:
            raise QuestionError(f"k must be between 1 and {self.settings.max_k}")
        searcher = self.searcher()
        u = self._understand(q)
        filters = filters or NO_FILTERS
        if filters == NO_FILTERS:
            hits, _ = self._search(searcher, q, u, k, filters)
            unfiltered = hits
        else:
            # Abstention reads the unfiltered ranking (see answers.verdict); its reference
            # cosine also measures the shown passages' margins.
            unfiltered, reference = self._search(searcher, q, u, k, NO_FILTERS)
            hits, _ = self._search(searcher, q, u, k, filters, reference)
        return Answer(
            question=question,
            question_language=u.language,
            answerable=verdict(unfiltered, hits, searcher.answer_params),
            hits=hits,
            index_version=searcher.version,
            took_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    # -- deleted articles ------------------------------------------------------------
    def forget_article(self, article_id: str) -> None:
        """Never return this article again, even from an index built before its deletion."""
        with self._deleted_lock:
            self._deleted.add(article_id)

    def _excluded(self) -> frozenset[str]:
        with self._deleted_lock:
            candidates = list(self._deleted)
        gone = frozenset(a for a in candidates if self.store.stored_state(a) is None)
        with self._deleted_lock:
            self._deleted -= set(candidates) - gone
        return gone

    def _search(
        self,
        searcher: IndexReader,
        q: str,
        u: Understood,
        k: int,
        filters: Filters,
        reference: float | None = None,
    ) -> tuple[list[Hit], float]:
        """The top ``k`` hits and the candidates' reference cosine."""
        hits: list[Hit] = []
        # Each hit is checked against the store as well, so that an article deleted by
        # another process (the CLI) is caught too; its id joins the set and the top k are
        # picked again from the same candidates, so the answer still has k passages.
        candidates = searcher.search(u.vector, q, k, filters)
        for _ in range(3):
            excluded = self._excluded()
            hits = top_hits(
                searcher,
                candidates,
                q,
                u.language,
                u.vector,
                k,
                excluded=excluded.__contains__,
                reference=reference,
                second=u.second,
            )
            ids = {h.passage.chunk.article_id for h in hits}
            gone = {a for a in ids if self.store.stored_state(a) is None}
            if not gone:
                return hits, candidates.reference
            with self._deleted_lock:
                self._deleted |= gone
        return [h for h in hits if h.passage.chunk.article_id not in gone], candidates.reference

    def close(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=30)
        if self._merge is not None:
            self._merge.join(timeout=600)
        self._batcher.close()
        if self._second is not None:
            self._second.close()
        self.store.close()
