"""Scale tiers: build time, size on disk, serving memory, latency and recall per size."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from akhbar.eval.bench.common import (
    RESULTS_DIR,
    dir_size_mb,
    run_worker,
    served_figures,
    write_result,
)
from akhbar.eval.bench.questions import eval_set_questions
from akhbar.eval.bench.server import server_env
from akhbar.eval.bench.synthetic import (
    BLOCK,
    SIGMA,
    Base,
    SynthVectors,
    Tier,
    ensure_tier,
    sample_base,
)
from akhbar.eval.retrieval import encode_batched
from akhbar.index.encoder import FAST_QUERY_BATCH, Encoder
from akhbar.index.local.chunktable import ChunkTable
from akhbar.index.local.dense import DenseIndex, DenseParams, DenseSizing
from akhbar.index.local.versions import read_manifest
from akhbar.pipeline import dense_sizing, fusion_params
from akhbar.settings import Settings

DEFAULT_TIERS = (10_000, 100_000, 1_000_000)
TARGET_RSS_MB_1M = 1536.0
TARGET_RECALL = 0.95
K = 10


def recall_at_k(
    tier: Tier, base: Base, queries: np.ndarray, candidates: int, k: int = K
) -> dict[str, float]:
    """Recall@k of the tier's dense side against exact fp32 search on the same vectors:
    FAISS's own top k, and what the searcher serves (FAISS's top ``candidates``, their
    cosines recomputed from the fp32 vectors where the index is quantised)."""
    path = Path(tier.home) / "index" / "versions" / tier.version
    table = ChunkTable(path)
    exact = faiss.IndexFlatIP(queries.shape[1])
    vectors = SynthVectors(base.vectors, tier.sigma, tier.seed)
    for start in range(0, tier.n, BLOCK):  # block by block: never two copies of 1M x 384
        exact.add(vectors(np.arange(start, min(start + BLOCK, tier.n), dtype=np.int64)))
    _, rows = exact.search(queries, k)
    del exact
    truth = [set(t) for t in table.int_ids[rows].tolist()]
    dense = DenseIndex.load(path, DenseParams(**read_manifest(path)["dense"]))
    scores, got = dense.search(queries, candidates)
    faiss_hits, served_hits = [], []
    for q, t, s, g in zip(queries, truth, scores, got, strict=True):
        faiss_hits.append(len(t & set(g[:k].tolist())))
        ids = g[g >= 0]
        rows_ = table.rows_of(ids)
        rescored = dense.exact_scores(rows_, q)
        order = np.argsort(-(s[g >= 0] if rescored is None else rescored), kind="stable")
        served_hits.append(len(t & set(ids[order[:k]].tolist())))
    table.close()
    return {
        f"recall@{k}": float(np.mean(served_hits) / k),
        f"faiss_recall@{k}": float(np.mean(faiss_hits) / k),
    }


def _worker(mode: str, settings: Settings, questions: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as fh:
        json.dump(questions, fh, ensure_ascii=False)
        fh.flush()
        return run_worker("akhbar.eval.bench.scale_worker", mode, fh.name, env=server_env(settings))


def bench_scale(
    settings: Settings,
    encoder: Encoder,
    *,
    tiers: Sequence[int] = DEFAULT_TIERS,
    work_dir: Path | None = None,
    queries: int = 200,
    sizing: DenseSizing | None = None,
    base_passages: int | None = None,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    """``sizing`` overrides the settings' index choice by size (``DenseSizing(0, 0)``:
    HNSW+SQ8 at every tier, to measure the large-corpus index type on tiers built here)."""
    base = sample_base(settings, encoder, base_passages)
    questions = eval_set_questions(queries)
    # Encoded as the server encodes them (its batcher hands the question encoder at most
    # FAST_QUERY_BATCH questions), so the recall is that of what is served.
    qvecs, _ = encode_batched(encoder, questions, batch=FAST_QUERY_BATCH)
    rows = []
    breakdowns: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-scale-") as tmp:
        root = work_dir or Path(tmp)
        for n in tiers:
            tier = ensure_tier(settings, encoder, base, n, root, sizing=sizing)
            s = tier.settings(settings)
            served = _worker("serve", s, questions)
            parts = _worker("breakdown", s, questions)
            steps = parts["rss_steps_mb"]
            # What the index parts do not explain: torch, the model, the store, the app.
            steps["encoder, store and the rest (serve RSS - index parts)"] = (
                served["rss_loaded_mb"] - steps["index_parts_total"]
            )
            breakdowns[str(n)] = parts
            rows.append(
                {
                    "chunks": tier.chunks,
                    "index": f"{tier.kind}+{tier.storage}",
                    "build_s": tier.build_s,
                    "store_fill_s": tier.store_fill_s,
                    "index_mb": dir_size_mb(Path(s.index_dir) / "versions" / tier.version),
                    "store_mb": s.store_path.stat().st_size / 2**20,
                    **served_figures(served),
                    "rss_anon_after_queries_mb": served["rss_anon_after_queries_mb"],
                    "rss_file_after_queries_mb": served["rss_file_after_queries_mb"],
                    "peak_rss_mb": served["peak_rss_mb"],
                    **recall_at_k(tier, base, qvecs, fusion_params(s).candidates),
                }
            )
    big = [r for r in rows if r["chunks"] >= 1_000_000]
    result = {
        "benchmark": "scale",
        "note": (
            f"SYNTHETIC tiers: vectors are the {len(base.articles)} real sample passage "
            f"vectors reused with N(0, {SIGMA}^2) noise per dimension and "
            "renormalised; texts are the real passages cycled with a reference suffix. "
            "Queries use the real encoder (eval-set questions). recall@10 is what the "
            "searcher serves (FAISS's top candidates, rescored from fp32 vectors where the "
            "index is quantised) against exact fp32 flat search on the same vectors; "
            "faiss_recall@10 is FAISS's own top 10. With ~2,700 near-copies of each base "
            "passage at 1M, the synthetic tiers are harder for a graph index than real text."
        ),
        "queries": len(questions),
        "dense_sizing": asdict(sizing or dense_sizing(settings)),
        "rows": rows,
        "memory_breakdown": breakdowns,
        "targets": {
            "rss_mb_at_1m": TARGET_RSS_MB_1M,
            f"recall@{K}": TARGET_RECALL,
            "met_at_1m": (
                None
                if not big
                else big[0]["rss_after_queries_mb"] <= TARGET_RSS_MB_1M
                and big[0][f"recall@{K}"] >= TARGET_RECALL
            ),
        },
    }
    write_result("scale", result, out_dir)
    return result
