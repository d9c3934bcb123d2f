"""One tier's serving process: its resident memory, and query latency, on its own.

Usage: python -m eval.bench.scale_worker serve|breakdown QUESTIONS_JSON
(settings come from the AKHBAR_* environment, as for the server)

serve: open the index the way the service does (QAEngine), time searcher-only and full
asks, report VmRSS after load and after the queries, and peak RSS.
breakdown: load each part of a version one by one and report the VmRSS each one adds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from akhbar.eval.bench.common import peak_rss_mb, percentiles, vm_rss_mb
from akhbar.eval.bench.questions import variant


def serve(questions: list[str]) -> dict:
    from akhbar.index.answers import top_hits
    from akhbar.service.qa import QAEngine
    from akhbar.settings import Settings

    rss_start = vm_rss_mb()
    engine = QAEngine(Settings())
    searcher = engine.searcher()
    rss_loaded = vm_rss_mb()
    # Outside the timing (search only), and through the engine's own question path, so
    # the process holds what a server holds (no PyTorch copy of the model).
    langs, vecs = zip(*(engine.understand(q) for q in questions), strict=True)
    for v, q, lang in zip(vecs[:5], questions, langs, strict=False):
        top_hits(searcher, searcher.search(v, q, 5), q, lang, v, 5)
    search_ms = []
    for v, q, lang in zip(vecs, questions, langs, strict=True):
        t0 = time.perf_counter()
        top_hits(searcher, searcher.search(v, q, 5), q, lang, v, 5)
        search_ms.append((time.perf_counter() - t0) * 1000)
    ask_ms = []
    for i, q in enumerate(questions):
        # A variant the engine has not seen: the ask includes encoding the question.
        t0 = time.perf_counter()
        engine.ask(variant(q, i))
        ask_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "chunks": searcher.count,
        "rss_start_mb": rss_start,
        "rss_loaded_mb": rss_loaded,
        "rss_after_queries_mb": vm_rss_mb(),
        "rss_anon_after_queries_mb": vm_rss_mb("RssAnon"),
        "rss_file_after_queries_mb": vm_rss_mb("RssFile"),
        "peak_rss_mb": peak_rss_mb(),
        "search": percentiles(search_ms),
        "ask": percentiles(ask_ms),
        "queries": len(questions),
    }


def breakdown() -> dict:
    from akhbar.index.lexical import LexicalIndex
    from akhbar.index.local.chunktable import ChunkTable
    from akhbar.index.local.dense import DenseIndex, DenseParams
    from akhbar.index.local.versions import VersionStore, read_manifest
    from akhbar.settings import Settings

    settings = Settings()
    path = VersionStore(settings.index_dir).current_path()
    manifest = read_manifest(path)
    steps: dict[str, float] = {}
    keep: list[object] = []

    def step(name: str, load) -> None:
        before = vm_rss_mb()
        keep.append(load())
        steps[name] = vm_rss_mb() - before

    # No encoder here (its share is the serve run's loaded RSS minus these parts), so
    # this process stays cheap and torch's own allocations do not blur the deltas.
    steps["interpreter_and_imports"] = vm_rss_mb()
    step("dense (FAISS index)", lambda: DenseIndex.load(path, DenseParams(**manifest["dense"])))
    bm25_dir = path / LexicalIndex.DIRNAME
    # Loaded as the service loads it (memory-mapped): what it adds before any query.
    step("lexical (BM25 + vocabulary, mmap)", lambda: LexicalIndex.load(path))
    step("chunk table (arrays)", lambda: ChunkTable(path))
    steps["index_parts_total"] = vm_rss_mb() - steps["interpreter_and_imports"]
    files = {p.name: p.stat().st_size / 2**20 for p in sorted(path.iterdir()) if p.is_file()}
    files["bm25/"] = sum(p.stat().st_size for p in bm25_dir.iterdir()) / 2**20
    return {"rss_steps_mb": steps, "files_mb": files, "chunks": manifest["counts"]["chunks"]}


def main() -> None:
    mode, questions_path = sys.argv[1], Path(sys.argv[2])
    questions = json.loads(questions_path.read_text(encoding="utf-8"))
    out = serve(questions) if mode == "serve" else breakdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
