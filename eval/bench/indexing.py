"""Indexing throughput: the whole `akhbar index` path against the bare encoder.

Both sides run in one process on one encoder object over exactly the same chunk texts, so
the ratio is the pipeline's overhead (ingest, chunking, hashing, cache writes, BM25, FAISS,
chunk table, fsyncs, and per-batch encode calls) and nothing else.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from akhbar.corpus.chunking import chunk_article
from akhbar.corpus.store import Store
from akhbar.eval.bench.common import RESULTS_DIR, bench_settings, write_result
from akhbar.index.encoder import Encoder
from akhbar.index.prepare import embed_text
from akhbar.pipeline import chunking_params, run_index, run_ingest, sample_corpus_path
from akhbar.settings import Settings

TARGET_RATIO = 0.67
INCREMENT = 10
JSONL = "frwikinews_2012.jsonl"


def write_slice(src: Path, dest: Path, start: int, stop: int) -> int:
    lines = src.read_text(encoding="utf-8").splitlines()[start:stop]
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def sample_articles(tmp: Path, articles: int | None) -> Path:
    """The sample corpus, or a JSONL of its first ``articles`` written under ``tmp``."""
    if not articles:
        return sample_corpus_path()
    dest = tmp / "sample-slice.jsonl"
    write_slice(sample_corpus_path() / JSONL, dest, 0, articles)
    return dest


def chunk_embed_texts(settings: Settings) -> list[str]:
    """The texts the build encodes, recomputed the way build_index computes them."""
    params = chunking_params(settings)
    with Store(settings.store_path) as store:
        return [
            embed_text(c, a, params)
            for a in store.iter_articles()
            for c in chunk_article(a, params.max_chars, params.overlap_sentences)
        ]


def bench_indexing(
    settings: Settings,
    encoder: Encoder,
    *,
    articles: int | None = None,
    increment: int = INCREMENT,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    """``articles``: the first N articles of the sample's JSONL (default: all but the last
    ``increment``, plus the seed page); the next ``increment`` are what the incremental
    update adds."""
    sample = sample_corpus_path()
    total = sum(1 for line in (sample / JSONL).read_text(encoding="utf-8").splitlines() if line)
    first = min(articles, total - increment) if articles else total - increment
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-index-") as tmp:
        tmp_path = Path(tmp)
        s = bench_settings(settings, tmp_path / "home")
        initial = tmp_path / "initial.jsonl"
        write_slice(sample / JSONL, initial, 0, first)
        targets = [str(initial)] if articles else [str(initial), str(sample / "seed_page.txt")]

        encoder.encode_passages(["échauffement", "warm-up"])  # first-call allocations
        t0 = time.perf_counter()
        ingest_report = run_ingest(s, targets)
        t1 = time.perf_counter()
        build = run_index(s, encoder)
        t2 = time.perf_counter()

        texts = chunk_embed_texts(s)
        if len(texts) != build.chunks:
            raise RuntimeError(f"recomputed {len(texts)} chunk texts, the build had {build.chunks}")
        t3 = time.perf_counter()
        encoder.encode_passages(texts)
        raw_s = time.perf_counter() - t3

        added = tmp_path / "added.jsonl"
        n_added = write_slice(sample / JSONL, added, first, first + increment)
        t4 = time.perf_counter()
        run_ingest(s, [str(added)])
        inc = run_index(s, encoder)
        inc_s = time.perf_counter() - t4

    pipeline_s, index_s = t2 - t0, t2 - t1
    pipeline_rate = build.chunks / pipeline_s
    raw_rate = build.chunks / raw_s
    result = {
        "benchmark": "indexing",
        "note": "fresh home, empty embedding cache; raw = one encode_passages call over the "
        "same chunk texts on the same encoder object, in the same process",
        "articles_stored": ingest_report.stored,
        "chunks": build.chunks,
        "encoded": build.encoded,
        "ingest_s": t1 - t0,
        "index_s": index_s,
        "encode_s_inside_index": build.encode_seconds,
        "pipeline_s": pipeline_s,
        "raw_encode_s": raw_s,
        "pipeline_chunks_per_s": pipeline_rate,
        "index_only_chunks_per_s": build.chunks / index_s,
        "raw_chunks_per_s": raw_rate,
        "ratio": pipeline_rate / raw_rate,
        "target_ratio": TARGET_RATIO,
        "meets_target": pipeline_rate / raw_rate >= TARGET_RATIO,
        "incremental": {
            "articles_added": n_added,
            "chunks": inc.chunks,
            "encoded": inc.encoded,
            "reused": inc.reused,
            "seconds": inc_s,
            "index_s": inc.seconds,
        },
    }
    write_result("indexing", result, out_dir)
    return result
