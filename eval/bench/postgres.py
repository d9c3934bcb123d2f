"""The postgres backend beside the local one on the same synthetic tiers (`akhbar bench
postgres`).

A tier is the scale bench's (``synthetic.py``): the sample's real passages and vectors,
cycled with small perturbations, the same articles and vectors on both sides. The local
side is ``scale.py``'s run of that tier. The postgres side stores the tier's articles in the
database's article store and builds the index through ``PostgresIndex`` in a schema of its
own with the HNSW index forced on (threshold 0), then measures: time to store the articles
and to write the index rows (COPY of passages, vectors and postings) and the HNSW graph,
the tables' and the index's sizes, the served recall@10 of the dense side (HNSW candidates
re-scored in fp32) against exact search over the same vectors, the latency and one-thread
QPS of one hybrid search in this process, and, in a serving process of its own opened as
the service opens it (``scale_worker``), its resident memory and the search and full ask
latencies. The questions are the scale bench's (eval-set questions, real encoder).

``python -m akhbar.eval.bench.postgres URL [N...]`` (AKHBAR_HOME: where the model and the
embedding cache are) runs it without the CLI; writes eval/results/bench/postgres.{json,md}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg

from akhbar.eval.bench.common import (
    RESULTS_DIR,
    bench_settings,
    machine,
    run_worker,
    served_figures,
)
from akhbar.eval.bench.questions import eval_set_questions
from akhbar.eval.bench.scale import bench_scale
from akhbar.eval.bench.server import server_env
from akhbar.eval.bench.synthetic import (
    BLOCK,
    SIGMA,
    Base,
    PerturbedEncoder,
    SynthVectors,
    fill_store,
    sample_base,
    tier_articles,
)
from akhbar.eval.retrieval import encode_batched
from akhbar.index.encoder import FAST_QUERY_BATCH, Encoder
from akhbar.index.postgres.backend import PostgresIndex
from akhbar.pipeline import chunking_params, fusion_params
from akhbar.settings import Settings

K = 10


def _sizes(url: str, namespace: str, generation: int) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        conn.execute(f"SET search_path TO {namespace}, public")
        row = conn.execute(
            "SELECT pg_table_size(%s), pg_table_size(%s), pg_indexes_size(%s), "
            "pg_relation_size(%s), (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind IN ('r', 'm'))",
            [
                f"chunks_g{generation}",
                f"postings_g{generation}",
                f"postings_g{generation}",
                f"chunks_g{generation}_hnsw",
                namespace,
            ],
        ).fetchone()
    assert row is not None
    return {
        "chunks_bytes": int(row[0]),
        "postings_bytes": int(row[1] + row[2]),
        "hnsw_bytes": int(row[3]),
        # Everything the tier's schema holds: article store, index tables and indexes.
        "database_mb": round(int(row[4]) / 2**20, 1),
    }


def _truth(base: Base, vectors: SynthVectors, n: int, queries: np.ndarray) -> list[set[int]]:
    """Exact fp32 top K rows, block by block (never two copies of a large tier)."""
    best = np.full((len(queries), K), -np.inf, np.float32)
    rows = np.zeros((len(queries), K), np.int64)
    for start in range(0, n, BLOCK):
        ids = np.arange(start, min(start + BLOCK, n), dtype=np.int64)
        scores = np.concatenate([best, queries @ vectors(ids).T], axis=1)
        cand = np.concatenate([rows, np.broadcast_to(ids, (len(queries), len(ids)))], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        best = np.take_along_axis(scores, top, axis=1)
        rows = np.take_along_axis(cand, top, axis=1)
    return [set(r) for r in rows.tolist()]


def bench_tier(
    url: str,
    settings: Settings,
    encoder: Encoder,
    base: Base,
    n: int,
    questions: list[str],
    qvecs: np.ndarray,
    home: Path,
) -> dict:
    """Tier ``n`` on the postgres backend, in schema ``bench_pg_<n>`` (replaced)."""
    from akhbar.corpus.store.postgres import PostgresStore

    namespace = f"bench_pg_{n}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {namespace} CASCADE")
    # The local tier's vectors (seed 0 in ``ensure_tier``), so both sides index the same.
    vectors = SynthVectors(base.vectors, SIGMA, seed=0)
    synth = PerturbedEncoder(encoder, vectors, n)
    # No sentence vectors: the synthetic passages have none to look up (each sentence
    # would be encoded on its own); what they cost is in the README's arithmetic.
    chunking = replace(chunking_params(settings), sentence_vectors=False)
    backend = PostgresIndex(
        url,
        synth,
        namespace=namespace,
        cache_path=None,
        chunking=chunking,
        fusion=fusion_params(settings),
        hnsw_min_passages=0,
        hnsw_m=settings.postgres.hnsw_m,
        hnsw_ef_construction=settings.postgres.hnsw_ef_construction,
        hnsw_build_memory=settings.postgres.hnsw_build_memory,
        ef_search=settings.postgres.ef_search,
        create_schema=True,
    )
    articles = list(tier_articles(base, n, chunking.max_chars))
    t0 = time.perf_counter()
    with PostgresStore(url, namespace=namespace) as store:
        fill_store(store, articles)
        store_seq = store.change_seq()
    store_s = time.perf_counter() - t0
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(f"{stage}_start", time.perf_counter())
        if done >= total:
            marks[f"{stage}_end"] = time.perf_counter()

    t0 = time.perf_counter()
    report = backend.build(
        articles, corpus_checksum=f"tier-{n}", progress=progress, store_seq=store_seq
    )
    build_s = time.perf_counter() - t0
    generation = int(report.version.split(".")[0])
    reader = backend.open()
    truth = _truth(base, vectors, n, qvecs)
    hits = []
    for qv, t in zip(qvecs, truth, strict=True):
        c = reader.search(qv, "", K, mode="dense")
        got = [int(p.chunk.article_id[4:]) for p in reader.passages(c.keys[:K])]
        hits.append(len(set(got) & t))
    for qv, q in zip(qvecs[:5], questions, strict=False):  # warm the pool and the caches
        reader.search(qv, q, K)
    latencies = []
    for qv, q in zip(qvecs, questions, strict=True):
        t1 = time.perf_counter()
        reader.search(qv, q, K, mode="hybrid")
        latencies.append((time.perf_counter() - t1) * 1000)
    backend.close()
    sizes = _sizes(url, namespace, generation)
    s = bench_settings(settings, home, backend="postgres")
    env = {
        **server_env(s),
        "AKHBAR_BACKEND": "postgres",
        "AKHBAR_DATABASE_URL": url,
        "AKHBAR_POSTGRES__NAMESPACE": namespace,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as fh:
        json.dump(questions, fh, ensure_ascii=False)
        fh.flush()
        served = run_worker("akhbar.eval.bench.scale_worker", "serve", fh.name, env=env)
    return {
        "chunks": report.chunks,
        "store_s": round(store_s, 1),
        "build_s": round(build_s, 1),
        "write_s": round(marks["write_end"] - marks["write_start"], 1),
        "hnsw_s": round(marks["hnsw_end"] - marks["hnsw_start"], 1),
        "ingest_passages_per_s": round(n / (store_s + build_s), 1),
        **sizes,
        "hnsw_bytes_per_vector": round(sizes["hnsw_bytes"] / n),
        f"recall@{K}": round(float(np.mean(hits)) / K, 4),
        "hybrid_p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "hybrid_p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "hybrid_qps_1thread": round(1000 / float(np.mean(latencies)), 1),
        **served_figures(served),
    }


LOCAL_COLUMNS = (
    "build_s",
    "store_fill_s",
    "index_mb",
    "store_mb",
    "rss_loaded_mb",
    "rss_after_queries_mb",
    "search_p50_ms",
    "search_p95_ms",
    "ask_p50_ms",
    "ask_p95_ms",
    f"recall@{K}",
)


def bench_postgres(
    settings: Settings,
    encoder: Encoder,
    url: str,
    *,
    tiers: Sequence[int],
    queries: int = 200,
    work_dir: Path | None = None,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    base = sample_base(settings, encoder)
    questions = eval_set_questions(queries)
    qvecs, _ = encode_batched(encoder, questions, batch=FAST_QUERY_BATCH)
    rows = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-pg-") as tmp:
        for n in tiers:
            # The local side first, in the same run: the scale bench's own measurement.
            local = bench_scale(
                settings,
                encoder,
                tiers=[n],
                work_dir=work_dir,
                queries=queries,
                out_dir=Path(tmp) / "scale",
            )["rows"][0]
            load.append(os.getloadavg()[0])
            pg = bench_tier(
                url, settings, encoder, base, n, questions, qvecs, Path(tmp) / f"home-{n}"
            )
            load.append(os.getloadavg()[0])
            rows.append(
                {
                    "tier": n,
                    "postgres": pg,
                    "local": {c: local[c] for c in LOCAL_COLUMNS} | {"index": local["index"]},
                }
            )
    result = {
        "benchmark": "postgres",
        "machine": machine(),
        "load_1min": [round(x, 2) for x in load],
        "queries": len(questions),
        "note": (
            "SYNTHETIC tiers (scale bench): the same articles and vectors on both sides. "
            "search: searcher + answer layer in a serving process of its own; ask: the "
            "full ask (question encoding included); hybrid_*: one postgres hybrid search "
            "in the bench process, one thread. The postgres store and index share the "
            "machine's 2 cores with the bench."
        ),
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "postgres.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "postgres.md").write_text(markdown(result))
    return result


def _cell(side: dict, a: str, b: str | None) -> str:
    def fmt(x: object) -> str:
        return f"{x:.1f}" if isinstance(x, float) and x >= 1 else str(x)

    return fmt(side.get(a)) + ("" if b is None else f" / {fmt(side.get(b))}")


def markdown(result: dict) -> str:
    keys = [
        ("ask p50 / p95 ms", "ask_p50_ms", "ask_p95_ms"),
        ("search p50 / p95 ms", "search_p50_ms", "search_p95_ms"),
        ("API process RSS after queries MB", "rss_after_queries_mb", None),
        (f"recall@{K}", f"recall@{K}", None),
        ("build s", "build_s", None),
    ]
    lines = [
        "# postgres backend beside local: synthetic tiers (`akhbar bench postgres`)",
        "",
        f"Load average (1 min) during the run: {result['load_1min']}. {result['note']}",
        "",
        "| tier | figure | local | postgres |",
        "|---|---|---|---|",
    ]
    for r in result["rows"]:
        for label, a, b in keys:
            lines.append(
                f"| {r['tier']} | {label} | {_cell(r['local'], a, b)} | "
                f"{_cell(r['postgres'], a, b)} |"
            )
        pg = r["postgres"]
        for label, key in [
            ("postgres hybrid search p50 / p95 ms (bench process)", None),
            ("postgres one-thread QPS", "hybrid_qps_1thread"),
            ("postgres ingest passages/s (store + index)", "ingest_passages_per_s"),
            ("postgres store / index write / HNSW s", None),
            ("postgres schema size MB", "database_mb"),
        ]:
            if key:
                value = pg[key]
            elif label.startswith("postgres hybrid"):
                value = f"{pg['hybrid_p50_ms']} / {pg['hybrid_p95_ms']}"
            else:
                value = f"{pg['store_s']} / {pg['write_s']} / {pg['hnsw_s']}"
            lines.append(f"| {r['tier']} | {label} | | {value} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    from akhbar.index.model_build import ensure_builtin_model
    from akhbar.service.qa import load_encoder

    url, tiers = argv[0], [int(x) for x in argv[1:]] or [20_000]
    settings = Settings()
    ensure_builtin_model(settings.models_dir)
    bench_postgres(settings, load_encoder(settings), url, tiers=tiers)


if __name__ == "__main__":
    main(sys.argv[1:])
