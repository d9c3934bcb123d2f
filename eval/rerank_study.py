"""Offline study of reranking features, fitted on dev splits and reported on held-out ones.

``python -m akhbar.eval.rerank_study --data DIR --out FILE`` (DIR holds xquad/ and piaf/,
e.g. /work/shared/benchmarks). For each question it takes the served retriever's
candidates (hybrid: cosine + bounded BM25, through the memory backend, questions on the
served int8 encoder) and reranks the top ``K`` by

    fused score + w_sent * max over the passage's sentences of cos(q, sentence)
                + w_use * USE-multilingual cos(q, passage)
                + w_cov * the question's IDF-weighted terms a same-language passage holds

where each sentence is encoded on its own with the passage prompt. Weights are chosen on
the dev halves only (XQuAD even-numbered articles, PIAF even-numbered articles; the mean
nDCG@10 over the four tasks; the coverage weight with the other three as fitted) and
reported on the held-out halves (odd articles) with paired-bootstrap 95% intervals against
the baseline; full-set figures are beside, labelled as such. Also checked: the nDCG lost by
storing sentence vectors in fp16 or SQ8.

Encodings are cached under ``--work`` (sentence vectors also in the model's embedding
cache), so a second run costs only the scoring.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from akhbar.eval.benchmarks import Benchmark, load_piaf, load_xquad
from akhbar.eval.indexing import build_benchmark_index
from akhbar.index.base import IndexReader
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.prepare import encode_with_cache
from akhbar.index.rerank import term_coverage
from akhbar.index.second_view import UseEncoder
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings

TASKS = (("xquad-es-es", "es", "es"), ("xquad-en-es", "en", "es"), ("xquad-ar-es", "ar", "es"))
SENT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
USE_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
COVERAGE_WEIGHTS = (0.0, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3)
DEPTHS = (10, 20, 30)  # deeper (50) was tried: +0.001 to +0.004 on dev, more to read


@dataclass
class TaskData:
    """Per question: the served candidates (top ``depth``) and each feature for them."""

    name: str
    qids: list[str]
    split: np.ndarray  # True: dev (even article), False: held out
    fused: np.ndarray  # (q, depth) served scores, rank order
    gold: np.ndarray  # (q, depth) bool, the relevant passage
    sent: np.ndarray  # (q, depth) max sentence cosine
    s16: np.ndarray  # same from fp16 vectors
    s8: np.ndarray  # same from SQ8 vectors
    use: np.ndarray  # (q, depth) USE cosine with the passage
    coverage: np.ndarray  # (q, depth) index/rerank.term_coverage over the top ``depth``


def article_of(doc_id: str) -> int:
    # xquad-es-AA-PP, piaf-AAA-PP
    return int(doc_id.split("-")[-2])


def sq8(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per-dimension 8-bit scalar quantisation and back (what SQ8 storage keeps)."""
    step = np.maximum(hi - lo, 1e-12) / 255.0
    codes = np.clip(np.round((x - lo) / step), 0, 255)
    return (lo + codes * step).astype(np.float32)


def _cached(path: Path, make: Any) -> np.ndarray:
    if path.exists():
        return np.load(path)
    arr = make()
    np.save(path, arr)
    return arr


def collect(
    bench: Benchmark,
    reader: IndexReader,
    encoder: Encoder,
    use: UseEncoder,
    cache: EmbeddingCache,
    work: Path,
    depth: int,
    language: str,
) -> TaskData:
    qids = list(bench.queries)
    texts = [bench.queries[q][0] for q in qids]
    qvec = _cached(work / f"{bench.name}.q.npy", lambda: encoder.encode_queries(texts))
    quse = _cached(work / f"{bench.name}.quse.npy", lambda: use.encode(texts))
    all_keys = np.arange(reader.count)
    passages = reader.passages(all_keys)
    doc_ids = [p.chunk.article_id for p in passages]
    pool = doc_ids[0].rsplit("-", 2)[0]
    sent_texts = [[p.chunk.text[a:b] for a, b in p.chunk.sentences] for p in passages]
    flat = [s for ss in sent_texts for s in ss]
    enc = encode_with_cache(flat, encoder, cache)
    bounds = np.cumsum([0, *(len(ss) for ss in sent_texts)])
    svec = enc.vectors
    s16 = svec.astype(np.float16).astype(np.float32)
    s8 = sq8(svec, svec.min(axis=0), svec.max(axis=0))
    puse = _cached(work / f"{pool}.puse.npy", lambda: use.encode([p.chunk.text for p in passages]))
    n = len(qids)
    out = {k: np.full((n, depth), -np.inf, np.float32) for k in ("fused", "sent", "s16", "s8")}
    use_s = np.zeros((n, depth), np.float32)
    cov = np.zeros((n, depth), np.float32)
    gold = np.zeros((n, depth), bool)
    for i, qid in enumerate(qids):
        cand = reader.search(qvec[i], texts[i], 10, mode="hybrid")
        keys = cand.keys[:depth]
        m = len(keys)
        out["fused"][i, :m] = cand.score[:m]
        rel = bench.qrels[qid]
        cov[i, :m] = term_coverage(texts[i], language, [passages[k] for k in keys])
        for j, key in enumerate(keys):
            lo, hi = bounds[key], bounds[key + 1]
            out["sent"][i, j] = float((svec[lo:hi] @ qvec[i]).max())
            out["s16"][i, j] = float((s16[lo:hi] @ qvec[i]).max())
            out["s8"][i, j] = float((s8[lo:hi] @ qvec[i]).max())
            use_s[i, j] = float(puse[key] @ quse[i])
            gold[i, j] = doc_ids[key] in rel
    split = np.array([article_of(next(iter(bench.qrels[q]))) % 2 == 0 for q in qids])
    return TaskData(
        bench.name, qids, split, out["fused"], gold, out["sent"], out["s16"], out["s8"], use_s, cov
    )


def ndcg(
    task: TaskData, w_sent: float, w_use: float, k: int, w_cov: float = 0.0, sent: str = "sent"
) -> np.ndarray:
    """Per-question nDCG@10 (one relevant passage) after reranking the top ``k``."""
    feats = getattr(task, sent)
    score = (
        task.fused[:, :k]
        + w_sent * feats[:, :k]
        + w_use * task.use[:, :k]
        + w_cov * task.coverage[:, :k]
    )
    score = np.where(np.isfinite(task.fused[:, :k]), score, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    gold_k = np.take_along_axis(task.gold[:, :k], order, axis=1)
    # Beyond the reranked top k, the served order stays.
    ranked = np.concatenate([gold_k, task.gold[:, k:]], axis=1)[:, :10]
    gains = 1.0 / np.log2(np.arange(2, 12))
    return (ranked * gains).sum(axis=1)


def bootstrap(delta: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [delta[rng.integers(0, len(delta), len(delta))].mean() for _ in range(rounds)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


Point = tuple[float, float, int, float]  # w_sent, w_use, depth, w_cov


def fit(tasks: list[TaskData], grid: list[Point]) -> Point:
    """The grid point with the best dev nDCG@10, averaged over tasks."""

    def dev_score(point: Point) -> float:
        return float(np.mean([ndcg(t, *point)[t.split].mean() for t in tasks]))

    return max(grid, key=dev_score)


def report(tasks: list[TaskData]) -> dict[str, Any]:
    configs: dict[str, list[Point]] = {
        "baseline": [(0.0, 0.0, 10, 0.0)],
        "+sentences": [(ws, 0.0, k, 0.0) for ws in SENT_WEIGHTS for k in DEPTHS],
        "+use": [(0.0, wu, k, 0.0) for wu in USE_WEIGHTS for k in DEPTHS],
        "+sentences+use": [
            (ws, wu, k, 0.0) for ws in SENT_WEIGHTS for wu in USE_WEIGHTS for k in DEPTHS
        ],
    }
    out: dict[str, Any] = {"configs": {}}
    base = {t.name: ndcg(t, 0.0, 0.0, 10) for t in tasks}

    def scored(label: str, point: Point) -> None:
        ws, wu, k, wc = point
        row: dict[str, Any] = {"w_sent": ws, "w_use": wu, "depth": k, "w_cov": wc, "tasks": {}}
        for t in tasks:
            per_q = ndcg(t, ws, wu, k, wc)
            held = ~t.split
            delta = per_q[held] - base[t.name][held]
            row["tasks"][t.name] = {
                "dev": float(per_q[t.split].mean()),
                "held_out": float(per_q[held].mean()),
                "held_out_delta": float(delta.mean()),
                "held_out_delta_ci95": bootstrap(delta),
                "full_set": float(per_q.mean()),
                "n_dev": int(t.split.sum()),
                "n_held_out": int(held.sum()),
                "storage": {
                    s: float(ndcg(t, ws, wu, k, wc, sent=s)[held].mean()) for s in ("s16", "s8")
                },
            }
        out["configs"][label] = row

    for label, grid in configs.items():
        scored(label, fit(tasks, grid))
    # The coverage weight is fitted with the other three as chosen.
    ws, wu, k, _ = fit(tasks, configs["+sentences+use"])
    scored("+sentences+use+coverage", fit(tasks, [(ws, wu, k, wc) for wc in COVERAGE_WEIGHTS]))
    chosen = out["configs"]["+sentences+use+coverage"]
    out["fp16_max_abs_score_error"] = float(
        max(np.nanmax(np.abs(np.where(np.isfinite(t.sent), t.sent - t.s16, 0))) for t in tasks)
    )
    out["sq8_max_abs_score_error"] = float(
        max(np.nanmax(np.abs(np.where(np.isfinite(t.sent), t.sent - t.s8, 0))) for t in tasks)
    )
    out["chosen"] = {k: chosen[k] for k in ("w_sent", "w_use", "depth", "w_cov")}
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| config | weights (sent, USE, depth, coverage) | task | dev | held-out "
        "| Δ held-out [95% CI] "
        "| full set |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in result["configs"].items():
        for name, t in row["tasks"].items():
            lo, hi = t["held_out_delta_ci95"]
            lines.append(
                f"| {label} | {row['w_sent']}, {row['w_use']}, {row['depth']}, {row['w_cov']} "
                f"| {name} "
                f"| {t['dev']:.4f} | {t['held_out']:.4f} | {t['held_out_delta']:+.4f} "
                f"[{lo:+.4f}, {hi:+.4f}] | {t['full_set']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="holds xquad/ and piaf/")
    ap.add_argument("--out", type=Path, required=True, help="JSON results (a .md beside)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "akhbar-rerank")
    ap.add_argument("--limit", type=int, default=None, help="questions per task (quick runs)")
    args = ap.parse_args(argv)
    from akhbar.service.qa import load_encoder

    settings = Settings().model_copy(update={"backend": "memory"})
    encoder = load_encoder(settings)
    use = UseEncoder()
    args.work.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache.for_encoder(embeddings_path(settings), encoder)
    depth = max(DEPTHS)
    # Each benchmark with its questions' language.
    benches = [
        (load_xquad(q, d, data_dir=args.data / "xquad", limit=args.limit), q) for _, q, d in TASKS
    ]
    benches.append((load_piaf(data_dir=args.data / "piaf", limit=args.limit), "fr"))
    tasks: list[TaskData] = []
    readers: dict[str, IndexReader] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for bench, language in benches:
            pool = next(iter(bench.docs)).rsplit("-", 2)[0]
            if pool not in readers:
                readers[pool], _ = build_benchmark_index(bench, settings, encoder, Path(tmp) / pool)
            tasks.append(
                collect(bench, readers[pool], encoder, use, cache, args.work, depth, language)
            )
            print(f"{bench.name}: collected ({time.perf_counter() - t0:.0f} s)", flush=True)
    result = report(tasks)
    result["limit"] = args.limit
    result["note"] = (
        "dev = even-numbered articles, held-out = odd; weights fitted on dev only (mean "
        "nDCG@10 over the tasks); full set = both halves, not a held-out figure"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))
    print(json.dumps({k: result[k] for k in result if k != "configs"}, indent=1))


if __name__ == "__main__":
    main()
