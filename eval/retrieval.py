"""Running queries through an opened index in each retriever mode, keeping what metrics need."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from akhbar.index.answers import Hit, top_hits
from akhbar.index.base import IndexReader, Mode, Progress
from akhbar.index.encoder import Encoder
from akhbar.index.second_view import SecondView

MODES: tuple[Mode, ...] = ("lexical", "dense", "hybrid")


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    language: str  # the language the searcher is told (detected, as the service does)


@dataclass
class ModeRun:
    """One retriever's answers to every query."""

    mode: str
    docs: dict[str, list[str]] = field(default_factory=dict)  # ranked, first occurrence
    passages: dict[str, list[str]] = field(default_factory=dict)  # passage texts, ranked
    highlights: dict[str, list[str]] = field(default_factory=dict)  # their marked sentences
    # The best answer probability among the hits (what the service's verdict reads); -inf
    # when nothing came back.
    top_score: dict[str, float] = field(default_factory=dict)
    search_s: dict[str, float] = field(default_factory=dict)


def ranked_docs(hits: Sequence[Hit]) -> list[str]:
    """Article ids in rank order; an article's rank is that of its best passage."""
    out: list[str] = []
    seen: set[str] = set()
    for hit in hits:
        doc = hit.passage.chunk.article_id
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def encode_batched(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch: int = 64,
    progress: Progress | None = None,
    stage: str = "encode queries",
) -> tuple[np.ndarray, float]:
    """Query vectors in batches (so a progress bar can move) and the seconds spent."""
    out = np.zeros((len(texts), encoder.dimension), np.float32)
    spent = 0.0
    for start in range(0, len(texts), batch):
        t0 = time.perf_counter()
        out[start : start + batch] = encoder.encode_queries(list(texts[start : start + batch]))
        spent += time.perf_counter() - t0
        if progress:
            progress(stage, min(start + batch, len(texts)), len(texts))
    return out, spent


def encode_one_by_one(
    encoder: Encoder, texts: Sequence[str], *, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and per-query encode seconds: one call per question, as a user would ask,
    so the latency is the service's, not a batch's amortised share."""
    out = np.zeros((len(texts), encoder.dimension), np.float32)
    seconds = np.zeros(len(texts), np.float64)
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        out[i] = encoder.encode_queries([text])[0]
        seconds[i] = time.perf_counter() - t0
        if progress:
            progress("encode questions", i + 1, len(texts))
    return out, seconds


def retrieve(
    searcher: IndexReader,
    queries: Sequence[Query],
    vectors: np.ndarray,
    *,
    k: int,
    modes: Sequence[Mode] = MODES,
    progress: Progress | None = None,
    stage: str = "search",
    second: SecondView | None = None,
) -> dict[str, ModeRun]:
    """Top-k passages of every query in every mode; each query vector is reused by all
    modes. ``second``: the second view the service reranks with, if it runs one."""
    runs = {m: ModeRun(m) for m in modes}
    total = len(queries) * len(modes)
    done = 0
    for query, vec in zip(queries, vectors, strict=True):
        second_q = None if second is None else second.query(query.text, query.language)
        for mode in modes:
            t0 = time.perf_counter()
            candidates = searcher.search(vec, query.text, k, mode=mode)
            # The rerank is part of what the service runs (hybrid), not of one side alone.
            hits = top_hits(
                searcher,
                candidates,
                query.text,
                query.language,
                vec,
                k,
                rerank=mode == "hybrid",
                second=second_q,
            )
            if mode == "lexical":
                # Candidates hold the dense side's too, with BM25 score 0; BM25 alone would
                # return nothing for them.
                hits = [h for h in hits if h.lexical > 0]
            run = runs[mode]
            run.search_s[query.id] = time.perf_counter() - t0
            run.docs[query.id] = ranked_docs(hits)
            run.passages[query.id] = [h.passage.chunk.text for h in hits]
            run.highlights[query.id] = [h.passage.chunk.text[slice(*h.highlight)] for h in hits]
            # The service's verdict: some hit's answer probability reaches the answer model's
            # threshold (index/answers.py).
            run.top_score[query.id] = max(h.confidence for h in hits) if hits else -math.inf
            done += 1
        if progress:
            progress(stage, done, total)
    return runs
