"""Dispatch for ``akhbar bench``: run the chosen benchmarks and print their tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from service.config import Settings

ALL = ("encoders", "indexing", "latency", "scale", "peer")


def _table(title: str, rows: list[dict], columns: Sequence[str]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(
            *[f"{r[c]:.2f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
        )
    return t


def run_benchmarks(settings: Settings, which: Sequence[str], *, n: int, console: Console) -> None:
    unknown = set(which) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {ALL}")
    for name in which or ALL:
        if name == "encoders":
            from eval.bench.encoders import bench_encoders

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
        else:
            console.print(f"[yellow]{name}: not implemented yet[/yellow]")
