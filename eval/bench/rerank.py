"""What the rerank costs a question: the answer layer with and without it, on the sample's
local index, one question at a time (index/rerank.py, index/second_view.py).

Parts, each a p50 over the eval set's questions: the backend's search; the answer layer
(collapse, highlight) without the rerank; with the sentence rerank; with the sentence
rerank and the second view (its question encoding included). The rerank's cost is the
difference between the answer layer with and without it. Also what indexing the
sentences and the second view adds, from the build's own timings; and whole asks as the
service answers them (question encoded each time), the second view off and on, taken in
turn: the service encodes the view's question on the asking thread while the encoder
thread encodes it for e5, so its wall time and its CPU time differ. The term coverage is
also timed alone, cold (the analysis cache cleared before each question: the worst case,
a question whose reranked passages no question before touched), over the questions that
have passages in their own language to analyse.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.corpus.store import Store
from akhbar.eval.bench.common import (
    RESULTS_DIR,
    bench_settings,
    percentiles,
    write_result,
)
from akhbar.eval.bench.indexing import sample_articles
from akhbar.eval.bench.questions import eval_set_questions
from akhbar.index.analysis import LANGUAGES, analyze_cached
from akhbar.index.answers import top_hits
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.prepare import prepare
from akhbar.index.rerank import term_coverage
from akhbar.index.second_view import SecondView
from akhbar.pipeline import (
    chunking_params,
    embeddings_path,
    open_backend,
    run_index,
    run_ingest,
)
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

TARGET_RERANK_P50_MS = 3.0
TARGET_SECOND_VIEW_P50_MS = 2.0
K = 5


def bench_rerank(
    settings: Settings,
    encoder: Encoder,
    *,
    questions: int = 200,
    articles: int | None = None,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    """``articles``: the first N articles of the sample's JSONL (default: the whole sample)."""
    texts = eval_set_questions(questions)
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-rerank-") as tmp:
        s = bench_settings(settings, Path(tmp) / "home", backend="local", second_view=True)
        run_ingest(s, [str(sample_articles(Path(tmp), articles))])
        # Encoded once here, from an empty cache, for the parts' timings; the build then
        # reads every vector back.
        cache = EmbeddingCache.for_encoder(embeddings_path(s), encoder)
        with Store(s.store_path) as store:
            prep = prepare(
                store.iter_articles(), encoder=encoder, cache=cache, chunking=chunking_params(s)
            )
        cache.close()
        enc = prep.encoded
        build = run_index(s, encoder)
        reader = open_backend(s, encoder).open()
        view = SecondView.open(embeddings_path(s))
        vectors = encoder.encode_queries(texts)
        langs = [detect_language(t) for t in texts]
        view.question("warm-up")
        parts: dict[str, list[float]] = {
            "search": [],
            "answer_layer": [],
            "answer_layer_rerank": [],
            "answer_layer_rerank_second_view": [],
            "second_view_question": [],
            "term_coverage_cold": [],
        }
        changed_top = 0
        for text, vec, lang in zip(texts, vectors, langs, strict=True):
            t0 = time.perf_counter()
            cand = reader.search(vec, text, K)
            t1 = time.perf_counter()
            plain = top_hits(reader, cand, text, lang, vec, K, rerank=False)
            t2 = time.perf_counter()
            top_hits(reader, cand, text, lang, vec, K)
            t3 = time.perf_counter()
            second = view.query(text, lang)
            t4 = time.perf_counter()
            both = top_hits(reader, cand, text, lang, vec, K, second=second)
            t5 = time.perf_counter()
            parts["search"].append((t1 - t0) * 1000)
            parts["answer_layer"].append((t2 - t1) * 1000)
            parts["answer_layer_rerank"].append((t3 - t2) * 1000)
            parts["second_view_question"].append((t4 - t3) * 1000)
            parts["answer_layer_rerank_second_view"].append((t5 - t3) * 1000)
            changed_top += bool(plain and both) and (
                plain[0].passage.chunk.id != both[0].passage.chunk.id
            )
        for text, vec, lang in zip(texts, vectors, langs, strict=True):
            cand = reader.search(vec, text, K)
            head = reader.passages(cand.keys[: reader.answer_params.rerank_depth])
            if lang not in LANGUAGES or all(p.chunk.language != lang for p in head):
                continue  # nothing to analyse: the coverage returns at once
            analyze_cached.cache_clear()
            t0 = time.perf_counter()
            term_coverage(text, lang, head)
            parts["term_coverage_cold"].append((time.perf_counter() - t0) * 1000)
        reader.close()
        view.close()
        asks = _whole_asks(s, encoder, texts)
    p50 = {name: percentiles(ms)["p50_ms"] for name, ms in parts.items()}
    rerank_ms = np.array(parts["answer_layer_rerank"]) - np.array(parts["answer_layer"])
    full_ms = np.array(parts["answer_layer_rerank_second_view"]) - np.array(parts["answer_layer"])
    result = {
        "benchmark": "rerank",
        "note": "sample corpus, local backend, one question at a time; eval-set questions; "
        "the rerank's cost = the answer layer with it minus without it (same candidates)",
        "questions": len(texts),
        "chunks": build.chunks,
        "parts_p50_ms": p50,
        "sentence_rerank_p50_ms": float(np.median(rerank_ms)),
        "rerank_with_second_view_p50_ms": float(np.median(full_ms)),
        "second_view_question_p50_ms": p50["second_view_question"],
        "term_coverage_cold_questions": len(parts["term_coverage_cold"]),
        "top_passage_changed": changed_top,
        "ask": asks,
        "indexing": {
            "chunks": len(prep.chunks),
            "sentences": sum(len(v) for v in enc.sentences or []),
            "sentences_encoded": enc.sentences_encoded,
            "passages_encode_s": enc.seconds - enc.sentence_seconds - enc.second_view_seconds,
            "sentences_encode_s": enc.sentence_seconds,
            "second_view_encode_s": enc.second_view_seconds,
        },
        "targets": {
            "rerank_p50_ms": TARGET_RERANK_P50_MS,
            "second_view_question_p50_ms": TARGET_SECOND_VIEW_P50_MS,
        },
    }
    write_result("rerank", result, out_dir)
    return result


def _whole_asks(settings: Settings, encoder: Encoder, texts: list[str]) -> dict:
    """Wall and process CPU time of whole asks with the second view off and on, the two
    engines taking each question in turn (off first, then on first), so drift in the
    machine's load falls on both; the added cost is the median of per-question
    differences."""
    engines = {
        "off": QAEngine(
            settings.model_copy(update={"second_view": False}), encoder, question_cache=0
        ),
        "on": QAEngine(settings, encoder, question_cache=0),
    }
    wall: dict[str, list[float]] = {name: [] for name in engines}
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for text in texts[:5]:  # warm both
            for engine in engines.values():
                engine.ask(text, K)
        for i, text in enumerate(texts):
            for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
                w0, c0 = time.perf_counter(), time.process_time()
                engines[name].ask(text, K)
                wall[name].append((time.perf_counter() - w0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)
    finally:
        for engine in engines.values():
            engine.close()

    def added(x: dict[str, list[float]]) -> float:
        return round(float(np.median(np.array(x["on"]) - np.array(x["off"]))), 2)

    return {
        "wall_p50_ms": {name: round(float(np.median(v)), 2) for name, v in wall.items()},
        "cpu_p50_ms": {name: round(float(np.median(v)), 2) for name, v in cpu.items()},
        "second_view_added_wall_p50_ms": added(wall),
        "second_view_added_cpu_p50_ms": added(cpu),
    }
