"""Dispatch for ``akhbar bench``: run the chosen benchmarks and print their tables.

The command line (its options: tiers, sizes, request counts, a work dir that keeps built
tiers between runs) is in service/cli/, with the other commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from akhbar.eval.bench.common import RESULTS_DIR
from akhbar.index.local.dense import DenseSizing
from akhbar.settings import Settings

ALL = ("encoders", "indexing", "latency", "scale", "peer", "freshness", "rerank", "postgres")
# What a bare `akhbar bench` runs: postgres needs a database, so it runs when asked for.
DEFAULT = tuple(name for name in ALL if name != "postgres")


@dataclass
class BenchOptions:
    articles: int | None = None  # indexing/peer/rerank: first N sample articles (default: all)
    requests: int = 200  # latency: requests per (workload, concurrency)
    concurrency: tuple[int, ...] = (1, 8, 32)
    sizes: tuple[str, ...] = ("sample", "100000")  # latency: "sample" or a tier size
    tiers: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    exact_max: int | None = None  # scale: override the exact-index threshold (0: HNSW)
    compact_min: int | None = None  # scale: override the SQ8 threshold (0: HNSW+SQ8)
    queries: int = 200  # scale: recall/latency queries; peer: query count
    merge_max: int | None = None  # freshness: merge tiers up to this many chunks (None: all)
    work_dir: Path | None = None  # keeps synthetic tiers between runs (else a temp dir)
    out_dir: Path = RESULTS_DIR


def _table(title: str, rows: list[dict], columns: Sequence[str]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(
            *[f"{r[c]:.2f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
        )
    return t


def _encoder(settings: Settings):  # -> SentenceTransformerEncoder, loaded once per run
    from akhbar.index.model_build import ensure_builtin_model
    from akhbar.service.qa import load_encoder

    ensure_builtin_model(settings.models_dir)
    return load_encoder(settings)


def run_benchmarks(
    settings: Settings,
    which: Sequence[str],
    *,
    n: int,
    console: Console,
    options: BenchOptions | None = None,
) -> dict[str, dict]:
    unknown = set(which) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {ALL}")
    opt = options or BenchOptions()
    results: dict[str, dict] = {}
    encoder = None
    for name in which or DEFAULT:
        if name != "encoders" and encoder is None:
            encoder = _encoder(settings)
        if name == "encoders":
            from akhbar.eval.bench.encoders import bench_encoders

            res = bench_encoders(settings.models_dir, n=n)
            console.print(
                _table(
                    "Encoder throughput (passages/s, same passages)",
                    res["rows"],
                    [
                        "engine",
                        "passages",
                        "mean_tokens",
                        "passages_per_s",
                        "ratio_to_fp32",
                        "peak_rss_mb",
                    ],
                )
            )
            console.print(
                _table(
                    "Question encoders (same questions, same process, median of rounds)",
                    res["questions"]["rows"],
                    [
                        "engine",
                        "alone_p50_ms",
                        "alone_p95_ms",
                        "alone_cpu_ms",
                        "batch32_qps",
                        "cos_mean",
                        "cos_min",
                    ],
                )
            )
        elif name == "indexing":
            from akhbar.eval.bench.indexing import bench_indexing

            res = bench_indexing(settings, encoder, articles=opt.articles, out_dir=opt.out_dir)
            _print_indexing(console, res)
        elif name == "latency":
            from akhbar.eval.bench.latency import bench_latency

            res = bench_latency(
                settings,
                encoder,
                sizes=opt.sizes,
                requests=opt.requests,
                concurrency=opt.concurrency,
                work_dir=opt.work_dir,
                out_dir=opt.out_dir,
            )
            _print_latency(console, res)
        elif name == "scale":
            from akhbar.eval.bench.scale import bench_scale

            res = bench_scale(
                settings,
                encoder,
                tiers=opt.tiers,
                work_dir=opt.work_dir,
                queries=opt.queries,
                sizing=DenseSizing(
                    exact_max=(
                        settings.local.exact_index_max if opt.exact_max is None else opt.exact_max
                    ),
                    compact_min=(
                        settings.local.compact_index_min
                        if opt.compact_min is None
                        else opt.compact_min
                    ),
                ),
                out_dir=opt.out_dir,
            )
            _print_scale(console, res)
        elif name == "postgres":
            from rich.markdown import Markdown

            from akhbar.eval.bench.postgres import bench_postgres, markdown
            from akhbar.pipeline import database_url

            res = bench_postgres(
                settings,
                encoder,
                database_url(settings),
                tiers=opt.tiers,
                queries=opt.queries,
                work_dir=opt.work_dir,
                out_dir=opt.out_dir,
            )
            console.print(Markdown(markdown(res)))
        elif name == "freshness":
            from akhbar.eval.bench.freshness import bench_freshness

            res = bench_freshness(
                settings,
                encoder,
                tiers=opt.tiers,
                work_dir=opt.work_dir,
                merge_max=opt.merge_max,
                out_dir=opt.out_dir,
            )
            _print_freshness(console, res)
        elif name == "rerank":
            from akhbar.eval.bench.rerank import bench_rerank

            res = bench_rerank(
                settings,
                encoder,
                questions=opt.queries,
                articles=opt.articles,
                out_dir=opt.out_dir,
            )
            _print_rerank(console, res)
        else:
            from akhbar.eval.bench.peer import bench_peer

            res = bench_peer(
                settings, encoder, articles=opt.articles, queries=opt.queries, out_dir=opt.out_dir
            )
            _print_peer(console, res)
        results[name] = res
    return results


def _print_indexing(console: Console, res: dict) -> None:
    row = {
        "chunks": res["chunks"],
        "pipeline chunks/s": res["pipeline_chunks_per_s"],
        "index-only chunks/s": res["index_only_chunks_per_s"],
        "raw encoder chunks/s": res["raw_chunks_per_s"],
        "ratio": res["ratio"],
        "target": f">= {res['target_ratio']}",
    }
    console.print(_table("Indexing: `akhbar index` path vs raw encoder", [row], list(row)))
    inc = res["incremental"]
    console.print(
        f"incremental: +{inc['articles_added']} articles -> {inc['encoded']} encoded, "
        f"{inc['reused']} reused, {inc['seconds']:.2f} s"
    )


def _print_latency(console: Console, res: dict) -> None:
    cols = ["size", "chunks", "workload", "c", "requests", "errors", "p50_ms", "p95_ms"]
    cols += ["p99_ms", "qps", "server_took_p50_ms", "server_rss_mb"]
    console.print(_table("/v1/ask over HTTP (client-side)", res["rows"], cols))
    console.print(f"question encoder alone, same machine, no server: {res['encoder_alone']}")
    console.print(f"targets at 100k: {res['targets_100k']} -> {res['meets_100k']}")


def _print_scale(console: Console, res: dict) -> None:
    cols = ["chunks", "index", "build_s", "index_mb", "rss_loaded_mb", "rss_after_queries_mb"]
    cols += ["search_p50_ms", "search_p95_ms", "ask_p50_ms", "ask_p95_ms", "recall@10"]
    cols += ["faiss_recall@10"]
    console.print(_table("Scale tiers (SYNTHETIC vectors, see note)", res["rows"], cols))
    console.print(res["note"])
    for n, parts in res["memory_breakdown"].items():
        rows = [{"part": k, "mb": v} for k, v in parts["rss_steps_mb"].items()]
        console.print(
            _table(f"Resident memory by part, {n} chunks (VmRSS deltas)", rows, ["part", "mb"])
        )
    console.print(f"targets: {res['targets']}")


def _print_freshness(console: Console, res: dict) -> None:
    rows = [
        {
            "chunks": r["chunks"],
            "follower p50/p95 s": "{p50:.2f} / {p95:.2f}".format(
                **r["commit_to_answerable_follower_s"]
            ),
            "writer p50/p95 s": "{p50:.2f} / {p95:.2f}".format(
                **r["commit_to_answerable_writer_s"]
            ),
            "follower beside the delta p50/p95 s": "{p50:.2f} / {p95:.2f}".format(
                **r.get("commit_to_answerable_follower_with_delta_s", {"p50": 0, "p95": 0})
            ),
            "ask p50 ms (vector cached), no delta": r["query_ms_no_delta"]["p50"],
            "with delta": r["query_ms_with_delta"]["p50"],
            "ratio": r["query_p50_ratio"],
            "ask p50 ms (encoded), no delta": r.get("ask_encoded_ms_no_delta", {}).get("p50"),
            "with delta ": r.get("ask_encoded_ms_with_delta", {}).get("p50"),
            "ratio ": r.get("ask_encoded_p50_ratio"),
            "merge_s": r["merge_s"],
        }
        for r in res["rows"]
    ]
    console.print(
        _table("Freshness: ingest commit -> answerable", rows, list(rows[0]) if rows else [])
    )
    console.print(res["note"])
    console.print(f"targets: {res['targets']}")


def _print_rerank(console: Console, res: dict) -> None:
    rows = [{"part": k, "p50_ms": v} for k, v in res["parts_p50_ms"].items()]
    console.print(
        _table("Rerank: the answer layer's parts, one question at a time", rows, ["part", "p50_ms"])
    )
    console.print(
        f"sentence rerank p50 {res['sentence_rerank_p50_ms']:.2f} ms, with the second view "
        f"{res['rerank_with_second_view_p50_ms']:.2f} ms (its question "
        f"{res['second_view_question_p50_ms']:.2f} ms); targets {res['targets']}"
    )
    cold = res["parts_p50_ms"]["term_coverage_cold"]
    console.print(
        f"term coverage, analysis cache cleared: p50 {cold:.2f} ms over the "
        f"{res['term_coverage_cold_questions']} questions with passages to analyse"
    )
    console.print(f"indexing: {res['indexing']}")


def _print_peer(console: Console, res: dict) -> None:
    if "skipped" in res:
        console.print(f"[yellow]peer skipped: {res['skipped']}[/yellow]")
        return
    rows = [{"side": k, **v} for k, v in res["query_latency"].items()]
    console.print(_table(f"Query latency vs {res['peer']}", rows, ["side", "p50_ms", "p95_ms"]))
    console.print(f"indexing seconds: {res['indexing_s']}")
    console.print(
        f"txtai index / ours index: {res['indexing_ratio_txtai_over_ours_index']:.2f}; "
        f"ours ask p50 / txtai: {res['p50_ratio_ours_ask_over_txtai']:.2f}; "
        f"ours search p50 / txtai: {res['p50_ratio_ours_search_over_txtai']:.2f}"
    )
