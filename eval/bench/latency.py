"""HTTP latency and throughput of /v1/ask under concurrent load, on real servers.

Each size gets its own server; on it, a mixed workload (half the requests repeat popular
questions, which the query-embedding cache answers) and a distinct one (every question new
to the server, so every request runs the encoder) at each concurrency level.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from akhbar.eval.bench.common import RESULTS_DIR, bench_settings, percentiles, write_result
from akhbar.eval.bench.questions import Workload
from akhbar.eval.bench.server import serve
from akhbar.eval.bench.synthetic import ensure_tier, sample_base
from akhbar.index.encoder import Encoder
from akhbar.pipeline import run_index, run_ingest, sample_corpus_path
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

DEFAULT_CONCURRENCY = (1, 8, 32)
TARGETS_100K = {"p50_ms_c1": 15.0, "p95_ms_c1": 40.0, "qps_c32": 150.0}
WARMUP = 8


async def _fire(base: str, questions: list[str], concurrency: int) -> dict:
    """Send every question once, ``concurrency`` at a time; time each on the client."""
    latencies: list[float] = []
    took: list[float] = []
    errors = 0
    pending = iter(questions)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for q in pending:  # one shared iterator: each question is taken by one worker
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/ask", json={"question": q, "k": 5})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - t0) * 1000)
            if ok:
                took.append(r.json()["took_ms"])
            else:
                errors += 1

    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "requests": len(questions),
        "errors": errors,
        **percentiles(latencies),
        "qps": (len(questions) - errors) / wall,
        "server_took_p50_ms": float(np.median(took)) if took else float("nan"),
    }


def encoder_ceiling(encoder: Encoder, questions: Sequence[str], batch: int = 32) -> dict:
    """What the question encoder alone does on this machine, in this process, with no
    server running: the floor under a new question's latency (one question alone) and the
    ceiling over distinct-question throughput (a full batch, both cores). The served
    figures are read against these."""
    qs = list(questions)
    encoder.encode_queries(qs[:2])  # warm
    alone = []
    for q in qs[:batch]:
        t0 = time.perf_counter()
        encoder.encode_queries([q])
        alone.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    encoder.encode_queries(qs[batch : 2 * batch])
    per_question = (time.perf_counter() - t0) * 1000 / len(qs[batch : 2 * batch])
    return {
        "alone_p50_ms": float(np.median(alone)),
        f"batch{batch}_ms_per_question": per_question,
        "max_distinct_qps": 1000 / per_question,
    }


def _sample_settings(settings: Settings, home: Path) -> Settings:
    """A scratch home with the sample indexed (the user's embedding cache spares encoding
    it again on every run)."""
    s = bench_settings(settings, home)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(settings.cache_dir.resolve(), target_is_directory=True)
    run_ingest(s, [str(sample_corpus_path())])
    return s


@contextmanager
def _home_for(
    size: str, settings: Settings, encoder: Encoder, root: Path, work_dir: Path | None
) -> Iterator[Settings]:
    if size == "sample":
        s = _sample_settings(settings, root / "sample")
        run_index(s, encoder)
        yield s
        return
    base = sample_base(settings, encoder)
    tier = ensure_tier(settings, encoder, base, int(size), work_dir or root)
    yield tier.settings(settings)


def bench_latency(
    settings: Settings,
    encoder: Encoder,
    *,
    sizes: Sequence[str] = ("sample", "100000"),
    requests: int = 200,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    engine: QAEngine | None = None,
    work_dir: Path | None = None,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    """``engine``: serve the sample from this already-loaded engine in a thread of this
    process (tests); without it each size gets a real server process."""
    rows = []
    ceiling = encoder_ceiling(encoder, Workload(seed=99).distinct(64))
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-latency-") as tmp:
        for size in sizes:
            with _serving(size, settings, encoder, Path(tmp), work_dir, engine) as (served, n):
                workload = Workload(seed=len(rows))
                asyncio.run(_fire(served.base, workload.distinct(WARMUP), 1))
                for kind in ("mixed", "distinct"):
                    for c in concurrency:
                        qs = (
                            workload.mixed(requests)
                            if kind == "mixed"
                            else workload.distinct(requests)
                        )
                        res = asyncio.run(_fire(served.base, qs, c))
                        rows.append({"size": size, "chunks": n, "workload": kind, "c": c, **res})
                rss = served.rss_mb()
                for r in rows:
                    if r["size"] == size:
                        r["server_rss_mb"] = rss
    result = {
        "benchmark": "latency",
        "note": "client-side latency over loopback HTTP (httpx, keep-alive); mixed = "
        f"{Workload().repeat_share:.0%} repeats of popular questions (cache hits), distinct = "
        "every question new to the server; rate limit off; sizes other than 'sample' are "
        "synthetic tiers (see scale)",
        "server": "thread (shared engine)" if engine is not None else "uvicorn subprocess",
        "encoder_alone": ceiling,
        "rows": rows,
        "targets_100k": TARGETS_100K,
        "meets_100k": _meets(rows),
    }
    write_result("latency", result, out_dir)
    return result


@contextmanager
def _serving(
    size: str,
    settings: Settings,
    encoder: Encoder,
    root: Path,
    work_dir: Path | None,
    engine: QAEngine | None,
):  # -> Iterator[tuple[Served, int]]
    if engine is not None and size == "sample":
        with serve(engine.settings, engine) as served:
            yield served, engine.searcher().count
        return
    with _home_for(size, settings, encoder, root, work_dir) as s:
        if engine is not None:  # in-process mode: a thread server on the same encoder
            eng = QAEngine(s, encoder)
            try:
                with serve(s, eng) as served:
                    yield served, eng.searcher().count
            finally:
                eng.close()
            return
        with serve(s) as served:
            yield served, httpx.get(f"{served.base}/readyz").json()["chunks"]


def _meets(rows: list[dict]) -> dict[str, bool] | None:
    at = {(r["workload"], r["c"]): r for r in rows if r["chunks"] >= 100_000}
    if not at:
        return None
    out = {}
    for kind in ("mixed", "distinct"):
        c1, c32 = at.get((kind, 1)), at.get((kind, 32))
        if c1:
            out[f"{kind}_p50_c1"] = c1["p50_ms"] <= TARGETS_100K["p50_ms_c1"]
            out[f"{kind}_p95_c1"] = c1["p95_ms"] <= TARGETS_100K["p95_ms_c1"]
        if c32:
            out[f"{kind}_qps_c32"] = c32["qps"] >= TARGETS_100K["qps_c32"]
    return out
