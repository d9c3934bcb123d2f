"""Public benchmarks (XQuAD, PIAF, XQuAD-R) through a dedicated throwaway index each."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from akhbar.eval import metrics as m
from akhbar.eval.benchmarks import (
    BUNDLED_DIR,
    XQUAD_TASKS,
    Benchmark,
    load_piaf,
    load_xquad,
    load_xquad_r,
    resolve_data_dir,
)
from akhbar.eval.indexing import build_benchmark_index
from akhbar.eval.retrieval import MODES, ModeRun, Progress, Query, encode_batched, retrieve
from akhbar.index.encoder import Encoder
from akhbar.index.second_view import SecondView
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings

BENCHMARKS = ("xquad", "piaf", "xquad-r")  # what "all" runs
EXTRA = ("xquad-r-mini",)  # the bundled two-paragraph slice, for tests only
METRIC_COLUMNS = ("ndcg@10", "recall@10", "mrr@10", "map@20")

VectorCache = dict[str, np.ndarray]  # "<lang>:<query id>" -> query vector


def data_dir_for(name: str, data_dir: Path | None) -> Path:
    """``data_dir`` holds ``<name>/`` folders like $AKHBAR_BENCHMARKS_DIR; when it lacks
    this one, the usual bundled-then-env resolution applies."""
    if name == "xquad-r-mini":
        return BUNDLED_DIR / "xquad-r-mini"
    if data_dir is not None and (data_dir / name).is_dir():
        return data_dir / name
    return resolve_data_dir(name)


def shrink(bench: Benchmark, max_docs: int | None) -> Benchmark:
    """At most ``max_docs`` docs, always keeping every gold doc of the kept queries (so
    the pool is smaller but no query becomes unanswerable). For quick runs and tests:
    a smaller pool is an easier task, so these numbers are not comparable."""
    if max_docs is None or len(bench.docs) <= max_docs:
        return bench
    keep = {d for rel in bench.qrels.values() for d in rel}
    for doc_id in bench.docs:
        if len(keep) >= max_docs:
            break
        keep.add(doc_id)
    docs = {d: t for d, t in bench.docs.items() if d in keep}
    return replace(bench, docs=docs, notes={**bench.notes, "pool_shrunk_to": len(docs)})


def score_run(run: ModeRun, qrels: m.Qrels, with_map: bool) -> dict[str, dict[str, float]]:
    """metric -> {qid: score}."""
    out = {
        "ndcg@10": m.ndcg_at_k(run.docs, qrels, 10),
        "recall@10": m.recall_at_k(run.docs, qrels, 10),
        "mrr@10": m.mrr_at_k(run.docs, qrels, 10),
    }
    if with_map:
        out["map@20"] = m.average_precision_at_k(run.docs, qrels, 20)
    return out


def _query_vectors(
    bench: Benchmark, encoder: Encoder, cache: VectorCache, progress: Progress | None
) -> tuple[np.ndarray, float]:
    """Vectors for the benchmark's queries; a question already encoded for another task
    (XQuAD reuses each question set against two paragraph languages) is not re-encoded."""
    keys = [f"{lang}:{qid}" for qid, (_, lang) in bench.queries.items()]
    texts = [text for text, _ in bench.queries.values()]
    todo = [i for i, key in enumerate(keys) if key not in cache]
    vecs, seconds = encode_batched(
        encoder, [texts[i] for i in todo], progress=progress, stage=f"{bench.name}: queries"
    )
    for i, v in zip(todo, vecs, strict=True):
        cache[keys[i]] = v
    return np.stack([cache[key] for key in keys]) if keys else vecs, seconds


def evaluate_task(
    bench: Benchmark,
    searcher_of: Callable[[], Any],
    encoder: Encoder,
    cache: VectorCache,
    progress: Progress | None,
    second: SecondView | None = None,
) -> dict[str, Any]:
    """One benchmark task scored by every retriever, with per-query-language slices."""
    t0 = time.perf_counter()
    searcher = searcher_of()
    vectors, encode_s = _query_vectors(bench, encoder, cache, progress)
    queries = [Query(qid, text, lang) for qid, (text, lang) in bench.queries.items()]
    with_map = bench.metric == "map@20"
    t_search = time.perf_counter()
    runs = retrieve(
        searcher,
        queries,
        vectors,
        k=20 if with_map else 10,
        modes=MODES,
        progress=progress,
        stage=f"{bench.name}: search",
        second=second,
    )
    search_s = time.perf_counter() - t_search
    q_lang = {qid: lang for qid, (_, lang) in bench.queries.items()}
    retrievers: dict[str, Any] = {}
    by_lang: dict[str, dict[str, Any]] = {}
    for mode, run in runs.items():
        per_q = score_run(run, bench.qrels, with_map)
        retrievers[mode] = {name: m.mean(scores) for name, scores in per_q.items()}
        for name, scores in per_q.items():
            for lang, (value, n) in m.aggregate_by_slice(scores, q_lang).items():
                if lang != "all":
                    by_lang.setdefault(lang, {"n": n}).setdefault(mode, {})[name] = value
    doc_langs = sorted({lang for _, lang in bench.docs.values()})
    return {
        "name": bench.name,
        "pair": f"{'+'.join(sorted(set(q_lang.values())))}→{'+'.join(doc_langs)}",
        "metric": bench.metric,
        "docs": len(bench.docs),
        "queries": len(bench.queries),
        "notes": bench.notes,
        "retrievers": retrievers,
        "by_query_language": by_lang if len(by_lang) > 1 else {},
        "seconds": {
            "encode_queries": encode_s,
            "search": search_s,
            "total": time.perf_counter() - t0,
        },
    }


def run_tasks(
    name: str,
    tasks: Sequence[tuple[Benchmark, str]],
    user: Settings,
    encoder: Encoder,
    progress: Progress | None,
) -> dict[str, Any]:
    """Tasks sharing a doc pool (keyed by the second element) share one index."""
    t0 = time.perf_counter()
    cache: VectorCache = {}
    results: list[dict[str, Any]] = []
    index_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"akhbar-eval-{name}-") as tmp:
        searchers: dict[str, Any] = {}

        def searcher_for(bench: Benchmark, pool: str) -> Callable[[], Any]:
            def get() -> Any:
                if pool not in searchers:
                    searcher, seconds = build_benchmark_index(
                        bench, user, encoder, Path(tmp) / pool, progress=_staged(progress, pool)
                    )
                    searchers[pool] = searcher
                    index_info[pool] = {
                        "build_seconds": seconds,
                        "chunks": searcher.count,
                        "manifest": searcher.manifest,
                    }
                return searchers[pool]

            return get

        second = SecondView.open(embeddings_path(user)) if user.second_view else None
        try:
            for bench, pool in tasks:
                results.append(
                    evaluate_task(
                        bench, searcher_for(bench, pool), encoder, cache, progress, second
                    )
                )
        finally:
            for s in searchers.values():
                s.close()
            if second is not None:
                second.close()
    return {
        "name": name,
        "tasks": results,
        "indexes": index_info,
        "wall_s": time.perf_counter() - t0,
    }


def _staged(progress: Progress | None, pool: str) -> Progress | None:
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"index {pool}: {stage}", done, total)


def load_tasks(
    name: str, data_dir: Path | None, limit: int | None, max_docs: int | None
) -> list[tuple[Benchmark, str]]:
    """(benchmark, doc-pool key) pairs for one named benchmark."""
    root = data_dir_for(name, data_dir)
    if name == "xquad":
        return [
            (shrink(load_xquad(q, d, data_dir=root, limit=limit), max_docs), f"xquad-{d}")
            for q, d in XQUAD_TASKS
        ]
    if name == "piaf":
        return [(shrink(load_piaf(data_dir=root, limit=limit), max_docs), "piaf")]
    if name in ("xquad-r", "xquad-r-mini"):
        bench = shrink(load_xquad_r(data_dir=root, limit=limit), max_docs)
        bench = replace(bench, name=name, notes={**bench.notes, "limit_per_language": limit})
        return [(bench, name)]
    raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS + EXTRA)}")


def run_benchmark(
    name: str,
    user: Settings,
    encoder: Encoder,
    *,
    data_dir: Path | None = None,
    limit: int | None = None,
    max_docs: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One named benchmark; missing data gives a ``skipped`` entry instead of an error."""
    try:
        tasks = load_tasks(name, data_dir, limit, max_docs)
    except FileNotFoundError as exc:
        return {"name": name, "skipped": str(exc), "tasks": []}
    result = run_tasks(name, tasks, user, encoder, progress)
    result["limit"] = limit
    result["max_docs"] = max_docs
    return result


def headline(task: Mapping[str, Any], mode: str) -> float:
    return float(task["retrievers"][mode][task["metric"]])
