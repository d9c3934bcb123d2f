"""Shared pieces of the benchmarks: sample passages, subprocess runs, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from akhbar.corpus.chunking import chunk_article
from akhbar.corpus.ingest import ingest
from akhbar.corpus.sources import iter_sources
from akhbar.corpus.store import Store
from akhbar.settings import Settings

RESULTS_DIR = Path("eval/results/bench")


def sample_passages(limit: int | None = None, max_chars: int = 700) -> list[str]:
    """Real passages: the bundled sample corpus chunked as the index chunks it."""
    import tempfile

    from akhbar.pipeline import sample_corpus_path

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite3") as store:
        ingest(store, iter_sources([str(sample_corpus_path())]))
        texts = [
            c.text
            for a in store.iter_articles()
            if a.kind == "article"
            for c in chunk_article(a, max_chars, 1)
        ]
    return texts[:limit] if limit else texts


def served_figures(served: dict) -> dict[str, float]:
    """A serving worker's (``scale_worker serve``) memory and latency, as one table row."""
    return {
        "rss_loaded_mb": served["rss_loaded_mb"],
        "rss_after_queries_mb": served["rss_after_queries_mb"],
        "search_p50_ms": served["search"]["p50_ms"],
        "search_p95_ms": served["search"]["p95_ms"],
        "ask_p50_ms": served["ask"]["p50_ms"],
        "ask_p95_ms": served["ask"]["p95_ms"],
    }


def run_worker(module: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``python -m module args`` and parse its last stdout line as JSON.

    Each engine runs in its own process so that its peak resident memory is its own."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, data: dict, out_dir: Path = RESULTS_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, ensure_ascii=False))
    return path


def vm_rss_mb(field: str = "VmRSS") -> float:
    """Current resident memory (peak RSS hides what a loaded process keeps). ``RssAnon``:
    the process's own memory; ``RssFile``: pages of memory-mapped files it has touched,
    which the kernel can drop and read back at will."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def percentiles(ms: list[float] | np.ndarray) -> dict[str, float]:
    arr = np.asarray(ms, np.float64)
    if arr.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def bench_settings(settings: Settings, home: Path, **overrides: object) -> Settings:
    """``settings`` moved to a scratch ``home`` that links only the built model.

    The embedding cache is deliberately not linked: a benchmark starts from an empty one."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(settings.models_dir.resolve(), target_is_directory=True)
    return settings.model_copy(update={"home": home, **overrides})
