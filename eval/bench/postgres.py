"""The postgres backend at scale: build, HNSW, sizes, recall and latency on synthetic tiers.

A tier is the scale bench's (``synthetic.py``): the sample's real passages and vectors,
cycled with small perturbations. Each tier is built through ``PostgresIndex`` in a schema
of its own with the HNSW index forced on (threshold 0), then measured: time to write the
rows (COPY of passages, vectors and postings) and to build the HNSW graph, the tables'
and the index's sizes, the served recall@10 of the dense side (HNSW candidates re-scored
in fp32) against exact search over the same vectors, and the latency of one hybrid
search (dense + BM25 + fusion, one thread) with questions made of passage words.

``python -m akhbar.eval.bench.postgres URL [N...]`` (AKHBAR_HOME: where the model and the
embedding cache are); writes eval/results/bench/postgres.{json,md}.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg

from akhbar.eval.bench.common import RESULTS_DIR
from akhbar.eval.bench.synthetic import (
    SIGMA,
    PerturbedEncoder,
    SynthVectors,
    sample_base,
    tier_articles,
)
from akhbar.index.encoder import Encoder
from akhbar.index.postgres.backend import PostgresIndex
from akhbar.pipeline import chunking_params, fusion_params
from akhbar.settings import Settings

K = 10


def _sizes(url: str, namespace: str, generation: int) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        conn.execute(f"SET search_path TO {namespace}, public")
        row = conn.execute(
            "SELECT pg_table_size(%s), pg_table_size(%s), pg_indexes_size(%s), "
            "pg_relation_size(%s)",
            [
                f"chunks_g{generation}",
                f"postings_g{generation}",
                f"postings_g{generation}",
                f"chunks_g{generation}_hnsw",
            ],
        ).fetchone()
    assert row is not None
    return {
        "chunks_bytes": int(row[0]),
        "postings_bytes": int(row[1] + row[2]),
        "hnsw_bytes": int(row[3]),
    }


def bench_tier(url: str, settings: Settings, encoder: Encoder, base, n: int, queries: int) -> dict:
    namespace = f"bench_pg_{n}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {namespace} CASCADE")
    vectors = SynthVectors(base.vectors, SIGMA, seed=n)
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
        create_schema=True,
    )
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(f"{stage}_start", time.perf_counter())
        if done >= total:
            marks[f"{stage}_end"] = time.perf_counter()

    articles = list(tier_articles(base, n, chunking.max_chars))
    t0 = time.perf_counter()
    report = backend.build(articles, corpus_checksum=f"tier-{n}", progress=progress)
    build_s = time.perf_counter() - t0
    generation = int(report.version.split(".")[0])
    reader = backend.open()

    # Questions: a passage's first words, its vector perturbed again (another seed).
    rng = np.random.default_rng(7)
    rows = rng.choice(n, size=min(queries, n), replace=False)
    q_vectors = SynthVectors(base.vectors, SIGMA, seed=n + 1)(np.sort(rows))
    q_texts = [" ".join(articles[int(r)].text.split()[:8]) for r in np.sort(rows)]
    all_vectors = vectors(np.arange(n, dtype=np.int64))
    truth = np.argsort(-(q_vectors @ all_vectors.T), axis=1)[:, :K]
    del all_vectors
    hits = []
    for qv, t in zip(q_vectors, truth, strict=True):
        c = reader.search(qv, "", K, mode="dense")
        got = [int(p.chunk.article_id[4:]) for p in reader.passages(c.keys[:K])]
        hits.append(len(set(got) & set(t.tolist())))
    latencies = []
    for qv, text in zip(q_vectors, q_texts, strict=True):
        t1 = time.perf_counter()
        reader.search(qv, text, K, mode="hybrid")
        latencies.append((time.perf_counter() - t1) * 1000)
    backend.close()
    sizes = _sizes(url, namespace, generation)
    return {
        "passages": report.chunks,
        "build_s": round(build_s, 1),
        "write_s": round(marks["write_end"] - marks["write_start"], 1),
        "hnsw_s": round(marks["hnsw_end"] - marks["hnsw_start"], 1),
        **sizes,
        "hnsw_bytes_per_vector": round(sizes["hnsw_bytes"] / n),
        "chunks_bytes_per_passage": round(sizes["chunks_bytes"] / n),
        f"recall@{K}": round(float(np.mean(hits)) / K, 4),
        "hybrid_p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "hybrid_p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "queries": len(latencies),
    }


def main(argv: list[str]) -> None:
    from akhbar.index.model_build import ensure_builtin_model
    from akhbar.service.qa import load_encoder

    url, tiers = argv[0], [int(x) for x in argv[1:]] or [20_000]
    settings = Settings()
    ensure_builtin_model(settings.models_dir)
    encoder = load_encoder(settings)
    base = sample_base(settings, encoder)
    rows = []
    for n in tiers:
        row = {"tier": n, **bench_tier(url, settings, encoder, base, n, queries=200)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = Path(RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    (out / "postgres.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (out / "postgres.md").write_text(
        "# postgres backend: synthetic tiers (eval/bench/postgres.py)\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
