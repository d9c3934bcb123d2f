"""Writing a run's results: ``latest.json``, ``latest.md`` and one PNG chart per table.

Names are fixed so the newest results can be committed and diffed run to run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from akhbar.eval.evalset import RETRIEVAL_METRICS
from akhbar.eval.public import METRIC_COLUMNS
from akhbar.eval.retrieval import MODES

JSON_NAME = "latest.json"
MD_NAME = "latest.md"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"  # no data for this metric (e.g. abstention with no unanswerable question)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


# --- charts ---------------------------------------------------------------------------


def bar_chart(
    path: Path,
    title: str,
    groups: Sequence[str],
    values: Mapping[str, Sequence[float]],
    ylabel: str,
) -> None:
    """Grouped bars: one group per language pair, one bar per retriever."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(groups))
    width = 0.8 / max(len(values), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) + 2), 4))
    for i, (label, ys) in enumerate(values.items()):
        clean = [0.0 if y is None or math.isnan(y) else y for y in ys]
        ax.bar(x + (i - (len(values) - 1) / 2) * width, clean, width, label=label)
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 6 else 0)
    ax.set_ylim(0, 1.15)  # headroom so the legend row never hides a bar
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper center", ncol=len(values), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def eval_set_chart(result: Mapping[str, Any], out: Path) -> str:
    slices = [s for s in result["retrievers"]["hybrid"]["slices"] if not s.endswith("→none")]
    values = {
        mode: [result["retrievers"][mode]["slices"][s].get("ndcg@10") for s in slices]
        for mode in result["retrievers"]
    }
    name = "eval-set.png"
    bar_chart(out / name, "Akhbar eval set: nDCG@10 by language pair", slices, values, "nDCG@10")
    return name


def benchmark_chart(bench: Mapping[str, Any], out: Path) -> str | None:
    tasks = bench["tasks"]
    if not tasks:
        return None
    metric = tasks[0]["metric"]
    if len(tasks) == 1 and tasks[0]["by_query_language"]:
        by_lang = tasks[0]["by_query_language"]
        groups = [f"{lang}→pool" for lang in by_lang]
        values = {mode: [by_lang[lang][mode][metric] for lang in by_lang] for mode in MODES}
    else:
        groups = [t["pair"] for t in tasks]
        values = {mode: [t["retrievers"][mode][metric] for t in tasks] for mode in MODES}
    name = f"{bench['name']}.png"
    bar_chart(out / name, f"{bench['name']}: {metric} by language pair", groups, values, metric)
    return name


# --- markdown -------------------------------------------------------------------------


def eval_set_markdown(result: Mapping[str, Any], chart: str | None) -> list[str]:
    r = result["retrievers"]
    corpus = result.get("corpus") or {}
    parts = ["the bundled sample"]
    if corpus.get("distractors"):
        parts.append(f"{corpus['distractors']} PIAF and XQuAD-es paragraphs")
    if corpus.get("extra_distractors"):
        names = ", ".join(corpus.get("extra_sources") or [])
        parts.append(f"{corpus['extra_distractors']} articles of {names}")
    where = (
        f"{' plus '.join(parts)}, {corpus['articles']} documents in all"
        if len(parts) > 1
        else "the bundled sample corpus"
    )
    lines = [
        f"## Akhbar eval set ({where})",
        "",
        f"{result['questions']} questions ({result['answerable']} answerable, "
        f"{result['unanswerable']} unanswerable); retrieval metrics are article-level over "
        f"the top-10 passages, answerable questions only. Question-language detection "
        f"accuracy: {_fmt(result['language_detection_accuracy'])}. Latency = one question "
        f"encoded alone + search, in ms. `lexical` is BM25 alone: cross-lingual questions "
        f"reach French articles through shared names and numbers only. `highlight@1`: of "
        f"the questions whose first passage contains the answer string, the share whose "
        f"highlighted sentence contains it as well; `highlight_answer@1`: over all answerable "
        f"questions, the share whose first highlighted sentence holds the answer string.",
        "",
        "### Per retriever",
        "",
    ]
    header = ["retriever", *RETRIEVAL_METRICS, "p50 ms", "p95 ms"]
    rows = [
        [
            mode,
            *(r[mode]["overall"][k] for k in RETRIEVAL_METRICS),
            r[mode]["latency_ms"]["p50"],
            r[mode]["latency_ms"]["p95"],
        ]
        for mode in r
    ]
    lines += _table(header, rows)
    lines += [
        "",
        "### Abstention (no hit's answer probability reaches the threshold ⇒ abstain)",
        "",
        "Held-out columns refit the threshold only; with the answer model refitted per fold "
        "as well, see eval/results/answer-study.md.",
        "",
    ]
    rows = []
    for mode in r:
        a = r[mode]["abstention"]
        held = a.get("held_out") or {}
        rows.append(
            [
                mode,
                a["threshold"],
                a["precision"],
                a["recall"],
                a["f1"],
                a["support"],
                held.get("precision"),
                held.get("recall"),
                held.get("f1"),
                held.get("f1_mean_over_draws"),
                held.get("f1_sd_over_draws"),
                len(a.get("abstained_above_answer", [])),
                a["best_threshold"],
                a["best"]["f1"],
            ]
        )
    lines += _table(
        [
            "retriever",
            "threshold",
            "P",
            "R",
            "F1",
            "unanswerable",
            "held-out P",
            "held-out R",
            "held-out F1",
            "F1 mean (10 draws)",
            "sd",
            "abstained over answer",
            "best-F1 threshold",
            "F1 (fitted on all)",
        ],
        rows,
    )
    lines += [
        "",
        "As in the service, each retriever abstains when no passage it returns has an "
        "answer probability (the shipped answer model, index/answerability.py) at the "
        "threshold; the model was fitted on the served (hybrid) ranking of this set, so "
        "only the served row is its own, and none of these rows is held out for the "
        "model's coefficients (eval/results/answer-study.md is). The best-F1 threshold is "
        "a calibration suggestion fitted on this set, not a held-out estimate. Held-out: "
        "5 stratified folds, each question judged by the threshold with the best F1 on "
        "the other four (eval/abstention.py), pooled; the mean and sd are over 10 fold "
        "draws. "
        "'Abstained over answer': answerable questions the threshold abstains on although "
        "the first passage's highlighted sentence holds the answer string.",
        "",
        "### Per language pair (question → gold article)",
        "",
    ]
    rows = []
    for s in r["hybrid"]["slices"]:
        if s.endswith("→none"):
            continue
        for mode in r:
            sl = r[mode]["slices"][s]
            rows.append([s, sl["n"], mode, *(sl.get(k) for k in RETRIEVAL_METRICS)])
    lines += _table(["pair", "n", "retriever", *RETRIEVAL_METRICS], rows)
    if chart:
        lines += ["", f"![eval set by language pair]({chart})"]
    return [*lines, ""]


def benchmarks_markdown(benches: Sequence[Mapping[str, Any]], charts: Sequence[str]) -> list[str]:
    lines = [
        "## Public benchmarks (Wikipedia-derived, not news)",
        "",
        "Each benchmark has its own throwaway index built by the production pipeline (one "
        "doc = one chunk). XQuAD-R's headline metric is mAP@20 over the 11-language pool; "
        "the others use nDCG@10. `lexical` is BM25 alone (passages with no BM25 match are "
        "not returned), `dense` the e5 cosine alone, `hybrid` what the service runs.",
        "",
        "Published reference for XQuAD-R (LAReQA paper, mBERT, full 11-language pool): "
        "mAP@20 En-En 0.29, X-X 0.23, X-X-mono 0.52, X-Y 0.66. With a per-language query "
        "limit the pool stays full, so the task is as hard, but the mean is over fewer "
        "questions.",
        "",
    ]
    rows = []
    for bench in benches:
        if bench.get("skipped"):
            lines.append(f"- **{bench['name']} skipped**: {bench['skipped']}")
            continue
        for task in bench["tasks"]:
            for mode in MODES:
                rv = task["retrievers"][mode]
                rows.append(
                    [
                        task["name"],
                        task["pair"],
                        task["docs"],
                        task["queries"],
                        mode,
                        *(rv.get(c) for c in METRIC_COLUMNS),
                    ]
                )
    if rows:
        if lines[-1] != "":
            lines.append("")
        lines += _table(["task", "pair", "docs", "queries", "retriever", *METRIC_COLUMNS], rows)
    for bench in benches:
        for task in bench["tasks"]:
            notes = {k: v for k, v in task["notes"].items() if v is not None}
            if notes:
                lines += ["", f"{task['name']} notes: {notes}"]
            by_lang = task["by_query_language"]
            if by_lang:
                metric = task["metric"]
                lines += ["", f"### {task['name']}: {metric} by question language", ""]
                lines += _table(
                    ["question language", "n", *MODES],
                    [
                        [lang, v["n"], *(v[mode][metric] for mode in MODES)]
                        for lang, v in by_lang.items()
                    ],
                )
    lines += [""] + [f"![{c}]({c})" for c in charts]
    return [*lines, ""]


def fusion_markdown(manifest: Mapping[str, Any]) -> list[str]:
    return [
        "## Index configuration (sample index manifest)",
        "",
        f"- model: `{manifest.get('model')}` (dimension {manifest.get('dimension')})",
        f"- fusion: `{json.dumps(manifest.get('fusion'))}`",
        f"- chunking: `{json.dumps(manifest.get('chunking'))}`",
        f"- dense: `{json.dumps(manifest.get('dense'))}`",
        f"- counts: `{json.dumps(manifest.get('counts'))}`",
        "",
    ]


def timings_markdown(report: Mapping[str, Any]) -> list[str]:
    rows = [[name, secs] for name, secs in report["wall_s"].items()]
    lines = ["## Wall times (s)", "", *_table(["part", "seconds"], rows), ""]
    details = []
    for bench in report["benchmarks"]:
        for pool, info in bench.get("indexes", {}).items():
            details.append([f"index {pool}", info["chunks"], info["build_seconds"]])
        for task in bench["tasks"]:
            s = task["seconds"]
            details.append(
                [f"{task['name']}: encode queries", task["queries"], s["encode_queries"]]
            )
            details.append([f"{task['name']}: search ×3 modes", task["queries"], s["search"]])
    if details:
        lines += _table(["step", "items", "seconds"], details) + [""]
    return lines


def render_markdown(report: Mapping[str, Any], charts: Mapping[str, str]) -> str:
    commit = report["commit"]
    machine = report["machine"]
    model = report["model"]
    lines = [
        "# Akhbar evaluation",
        "",
        f"- date: {report['date']}",
        f"- commit: `{commit.get('hash')}`"
        + (" (working tree dirty)" if commit.get("dirty") else ""),
        f"- model: `{model['name']}` on {model.get('device')} ({model.get('precision')})",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, python {machine['python']}, "
        f"torch {machine.get('torch')}",
        f"- load average (1/5/15 min) at start {machine.get('load_average_start')}, "
        f"at end {machine.get('load_average_end')}: the machine is shared, so wall times "
        "are upper bounds",
        f"- options: `{json.dumps(report['options'])}`",
        "",
    ]
    lines += [f"- note: {note}" for note in report.get("notes", [])]
    if report.get("notes"):
        lines.append("")
    if not report.get("complete", True):
        lines += ["**Partial report: the run had not finished when this was written.**", ""]
    eval_set = report.get("eval_set")
    if eval_set:
        lines += eval_set_markdown(eval_set, charts.get("eval-set"))
        lines += fusion_markdown(eval_set["manifest"])
    if report["benchmarks"]:
        bench_charts = [c for k, c in charts.items() if k != "eval-set"]
        lines += benchmarks_markdown(report["benchmarks"], bench_charts)
    lines += timings_markdown(report)
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    # NaN and inf are not JSON; null keeps the file loadable by any parser.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(report: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """Write JSON, Markdown and charts into ``out``; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    charts: dict[str, str] = {}
    if report.get("eval_set"):
        charts["eval-set"] = eval_set_chart(report["eval_set"], out)
    for bench in report["benchmarks"]:
        name = benchmark_chart(bench, out)
        if name:
            charts[bench["name"]] = name
    (out / JSON_NAME).write_text(
        json.dumps(_json_safe(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / MD_NAME).write_text(render_markdown(report, charts), encoding="utf-8")
    written = {"json": out / JSON_NAME, "markdown": out / MD_NAME}
    written.update({k: out / v for k, v in charts.items()})
    return written
