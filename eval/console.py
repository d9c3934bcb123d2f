"""Terminal summary of a report (the full tables are in latest.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from akhbar.eval.public import METRIC_COLUMNS
from akhbar.eval.retrieval import MODES

_SET_COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_hit@5")


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary_tables(report: Mapping[str, Any]) -> list[Table]:
    tables: list[Table] = []
    eval_set = report.get("eval_set")
    if eval_set:
        t = Table(title=f"eval set ({eval_set['questions']} questions)")
        for col in ("retriever", *_SET_COLUMNS, "abst. F1", "p50 ms", "p95 ms"):
            t.add_column(col)
        for mode, r in eval_set["retrievers"].items():
            t.add_row(
                mode,
                *(_f(r["overall"][c]) for c in _SET_COLUMNS),
                _f(r["abstention"]["f1"]),
                f"{r['latency_ms']['p50']:.0f}",
                f"{r['latency_ms']['p95']:.0f}",
            )
        tables.append(t)
    rows = [(b, task) for b in report["benchmarks"] for task in b["tasks"]]
    if rows:
        t = Table(title="public benchmarks")
        for col in ("task", "queries", "retriever", *METRIC_COLUMNS):
            t.add_column(col)
        for _, task in rows:
            for mode in MODES:
                rv = task["retrievers"][mode]
                t.add_row(
                    task["name"],
                    str(task["queries"]),
                    mode,
                    *(_f(rv.get(c)) for c in METRIC_COLUMNS),
                )
        tables.append(t)
    return tables


def skipped(report: Mapping[str, Any]) -> list[str]:
    return [
        f"{b['name']} skipped: {b['skipped']}" for b in report["benchmarks"] if b.get("skipped")
    ]
