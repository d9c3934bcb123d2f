"""Against a peer: txtai (FAISS + BM25 hybrid, content stored) on the same model and corpus.

Both run in this process on the same built model directory, the same chunk texts and the
same questions, so the ratios compare the two pipelines rather than two machines or two
models. txtai is an optional dependency (the ``bench`` extra); without it this is skipped.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from akhbar.corpus.language import detect_language
from akhbar.eval.bench.common import RESULTS_DIR, bench_settings, percentiles, write_result
from akhbar.eval.bench.indexing import chunk_embed_texts, sample_articles
from akhbar.eval.bench.questions import Workload
from akhbar.index.answers import top_hits
from akhbar.index.encoder import Encoder
from akhbar.index.model_build import BUILTIN_NAME
from akhbar.pipeline import run_index, run_ingest
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings


def txtai_status() -> str | None:
    """None when txtai can be used, else why not (precisely, for the report)."""
    try:
        import txtai  # noqa: F401
    except Exception as exc:
        return f"txtai cannot be imported: {type(exc).__name__}: {exc}"
    return None


def _txtai_config(model_dir: Path) -> dict:
    # e5 wants its prefixes; hybrid + content make txtai do what our index does
    # (dense + BM25, texts stored and returned).
    return {
        "path": str(model_dir),
        "backend": "faiss",
        "content": True,
        "hybrid": True,
        "instructions": {"query": "query: ", "data": "passage: "},
    }


def bench_peer(
    settings: Settings,
    encoder: Encoder,
    *,
    articles: int | None = None,
    queries: int = 100,
    rounds: int = 2,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    """Indexing is timed ``rounds`` times per side, the order alternating, from an empty
    embedding cache each time; the best of each side is compared (on a shared machine
    the best run is the least disturbed one)."""
    why = txtai_status()
    if why is not None:
        result = {"benchmark": "peer", "skipped": why}
        write_result("peer", result, out_dir)
        return result
    from txtai import Embeddings

    model_dir = settings.models_dir / BUILTIN_NAME
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-peer-") as tmp:
        targets = [str(sample_articles(Path(tmp), articles))]  # a slice for quick runs
        encoder.encode_passages(["échauffement"])
        peer = Embeddings(_txtai_config(model_dir))
        # Loads the model; index() on the same instance then rebuilds from scratch with it.
        peer.index(["échauffement"])
        ours_runs: list[tuple[float, float]] = []  # (ingest + index, index)
        peer_runs: list[float] = []

        def ours(i: int) -> Settings:
            s = bench_settings(settings, Path(tmp) / f"home{i}")  # empty cache each time
            t0 = time.perf_counter()
            run_ingest(s, targets)
            t1 = time.perf_counter()
            run_index(s, encoder)
            ours_runs.append((time.perf_counter() - t0, time.perf_counter() - t1))
            return s

        def theirs(texts: list[str]) -> None:
            t0 = time.perf_counter()
            peer.index(texts)
            peer_runs.append(time.perf_counter() - t0)

        s = ours(0)
        texts = chunk_embed_texts(s)  # exactly what our build encoded
        theirs(texts)
        for i in range(1, rounds):
            theirs(texts)
            s = ours(i)
        ours_total, ours_index = min(ours_runs, key=lambda r: r[1])
        peer_index = min(peer_runs)

        engine = QAEngine(s, encoder)
        searcher = engine.searcher()
        engine_chunks = searcher.count
        qs = Workload(seed=7).distinct(queries)  # never cached by either side
        timings: dict[str, list[float]] = {"txtai_search": [], "ours_ask": [], "ours_search": []}
        for q in qs[:3]:
            peer.search(q, 5)
            engine.ask(q + " ")
        for i, q in enumerate(qs):
            # Interleaved, so machine noise falls on all three alike.
            t = time.perf_counter()
            peer.search(q, 5)
            timings["txtai_search"].append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.ask(f"{q} #{i}")
            timings["ours_ask"].append(time.perf_counter() - t)
            t = time.perf_counter()
            vec = encoder.encode_queries([q])[0]
            top_hits(searcher, searcher.search(vec, q, 5), q, detect_language(q), vec, 5)
            timings["ours_search"].append(time.perf_counter() - t)
        engine.close()
        peer.close()

    lat = {k: percentiles(np.asarray(v) * 1000) for k, v in timings.items()}
    result = {
        "benchmark": "peer",
        "peer": "txtai " + _version("txtai"),
        "peer_config": {k: v for k, v in _txtai_config(model_dir).items() if k != "path"},
        "note": "same process, same model directory, same chunk texts; queries are distinct "
        "(no cache hits for either); ours_search = encode + search + answer layer, ours_ask = "
        "QAEngine.ask (adds language detection and store checks)",
        "chunks": engine_chunks,
        "peer_chunks": len(texts),
        "indexing_s": {
            "ours_ingest_and_index": ours_total,
            "ours_index": ours_index,
            "txtai_index": peer_index,
        },
        "indexing_runs_s": {"ours_index": [r[1] for r in ours_runs], "txtai_index": peer_runs},
        "indexing_ratio_txtai_over_ours_index": peer_index / ours_index,
        "query_latency": lat,
        "p50_ratio_ours_ask_over_txtai": lat["ours_ask"]["p50_ms"] / lat["txtai_search"]["p50_ms"],
        "p50_ratio_ours_search_over_txtai": (
            lat["ours_search"]["p50_ms"] / lat["txtai_search"]["p50_ms"]
        ),
        "queries": len(qs),
    }
    write_result("peer", result, out_dir)
    return result


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "?"
