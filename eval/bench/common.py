"""Shared pieces of the benchmarks: sample passages, subprocess runs, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from corpus.chunking import chunk_article
from corpus.ingest import ingest
from corpus.sources import iter_sources
from corpus.store import Store

RESULTS_DIR = Path("eval/results/bench")


def sample_passages(limit: int | None = None, max_chars: int = 700) -> list[str]:
    """Real passages: the bundled sample corpus chunked as the index chunks it."""
    import tempfile

    from service.operations import sample_corpus_path

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite3") as store:
        ingest(store, iter_sources([str(sample_corpus_path())]))
        texts = [
            c.text
            for a in store.iter_articles()
            if a.kind == "article"
            for c in chunk_article(a, max_chars, 1)
        ]
    return texts[:limit] if limit else texts


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
