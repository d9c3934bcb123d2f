"""The evaluation runner: the eval set over the sample, public benchmarks, one report.

Nothing here writes into the user's data home: indexes are built in temporary
directories, sharing only the built model and the embedding cache (see eval.indexing).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from akhbar.eval.dataset import DEFAULT_EVAL_SET, load_eval_set
from akhbar.eval.distractors import ingested_distractors, iter_distractors
from akhbar.eval.evalset import evaluate_eval_set
from akhbar.eval.indexing import build_sample_index
from akhbar.eval.machine import commit_info, load_average, machine_info, now_iso
from akhbar.eval.public import BENCHMARKS, EXTRA, run_benchmark
from akhbar.eval.report import write_report
from akhbar.eval.retrieval import Progress
from akhbar.index.encoder import Encoder
from akhbar.index.second_view import SecondView
from akhbar.pipeline import embeddings_path
from akhbar.settings import Settings

# The committed report the README links to; a run writes here only when asked to
# (`akhbar eval --out eval/results`), else into a run folder under the home (run_dir).
COMMITTED_RESULTS = Path(__file__).parent / "results"
EVAL_SET = "eval-set"


@dataclass(frozen=True)
class EvalOptions:
    eval_set: Path | None = DEFAULT_EVAL_SET  # None: skip the eval set
    benchmarks: tuple[str, ...] = ()
    limit: int | None = None  # questions per benchmark (per language for XQuAD-R)
    limits: dict[str, int] = field(default_factory=dict)  # per-benchmark overrides
    max_docs: int | None = None  # shrink benchmark pools (quick runs, tests)
    out: Path = COMMITTED_RESULTS
    data_dir: Path | None = None
    # The eval set's corpus: the sample plus the bundled benchmarks' fr/es paragraphs
    # (eval/distractors.py); False indexes the sample alone.
    distractors: bool = True
    # More distractors for the eval set, read as `akhbar ingest` reads (files, folders).
    extra_distractors: tuple[str, ...] = ()

    def limit_for(self, name: str) -> int | None:
        return self.limits.get(name, self.limit)


def run_dir(home: Path) -> Path:
    """A new folder for one run's report: ``<home>/eval/<UTC date-time>``, made here."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = home / "eval"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free run folder name under {base}")


def parse_benchmarks(names: Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    """(run the eval set?, benchmarks). ``all`` means the eval set and every benchmark;
    naming benchmarks alone runs just those, ``eval-set`` may be named with them."""
    if not names:
        return True, ()
    wanted: list[str] = []
    with_set = False
    for name in names:
        if name == "all":
            with_set = True
            wanted.extend(BENCHMARKS)
        elif name == EVAL_SET:
            with_set = True
        elif name in BENCHMARKS + EXTRA:
            wanted.append(name)
        else:
            known = ", ".join(("all", EVAL_SET, *BENCHMARKS, *EXTRA))
            raise ValueError(f"unknown benchmark {name!r}; known: {known}")
    return with_set, tuple(dict.fromkeys(wanted))


def parse_limits(values: Sequence[str]) -> tuple[int | None, dict[str, int]]:
    """``N`` sets the default limit, ``NAME=N`` one benchmark's (e.g. ``xquad-r=200``)."""
    default: int | None = None
    per: dict[str, int] = {}
    for value in values:
        name, _, n = value.rpartition("=")
        try:
            number = int(n)
        except ValueError:
            raise ValueError(f"bad --limit {value!r}: expected N or NAME=N") from None
        if number < 1:
            raise ValueError(f"--limit must be >= 1, got {value!r}")
        if name:
            per[name] = number
        else:
            default = number
    return default, per


def run_eval_set(
    settings: Settings,
    encoder: Encoder,
    path: Path,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    distractors: bool = True,
    extra_distractors: Sequence[str] = (),
) -> dict[str, Any]:
    items = load_eval_set(path)[:limit]
    bundled = list(iter_distractors()) if distractors else []
    ingested = ingested_distractors(extra_distractors)
    extra = bundled + ingested
    with tempfile.TemporaryDirectory(prefix="akhbar-eval-sample-") as tmp:
        t0 = time.perf_counter()
        searcher, languages = build_sample_index(
            settings, encoder, Path(tmp), progress, extra=extra
        )
        index_s = time.perf_counter() - t0
        second = SecondView.open(embeddings_path(settings)) if settings.second_view else None
        try:
            result = evaluate_eval_set(
                items, searcher, encoder, languages, progress=progress, second=second
            )
        finally:
            searcher.close()
            if second is not None:
                second.close()
    result["set"] = str(path)
    result["limit"] = limit
    result["corpus"] = {
        "articles": len(languages),
        "distractors": len(bundled),
        "extra_distractors": len(ingested),
        "extra_sources": [Path(t).name for t in extra_distractors],
    }
    result["index_seconds"] = index_s
    return result


def run(
    settings: Settings,
    options: EvalOptions,
    encoder: Encoder,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Everything ``options`` asks for; returns the report and the files written.

    The report is rewritten after each part, so a long run stopped midway still leaves
    the parts it finished (``complete`` says whether it got to the end)."""
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "date": now_iso(),
        "complete": False,
        "commit": commit_info(),
        "machine": machine_info(),
        "model": {
            "name": encoder.name,
            "dimension": encoder.dimension,
            "device": getattr(encoder, "device", None),
            "precision": getattr(encoder, "precision", None),
        },
        "options": {k: v for k, v in _plain(asdict(options)).items() if k != "out"},
        "backend": settings.backend,
        "eval_set": None,
        "benchmarks": [],
        "wall_s": {},
    }
    if options.eval_set is not None:
        report["eval_set"] = run_eval_set(
            settings,
            encoder,
            options.eval_set,
            limit=options.limit_for(EVAL_SET),
            progress=progress,
            distractors=options.distractors,
            extra_distractors=options.extra_distractors,
        )
        report["wall_s"][EVAL_SET] = time.perf_counter() - t0
        write_report(report, options.out)
    for name in options.benchmarks:
        t1 = time.perf_counter()
        report["benchmarks"].append(
            run_benchmark(
                name,
                settings,
                encoder,
                data_dir=options.data_dir,
                limit=options.limit_for(name),
                max_docs=options.max_docs,
                progress=progress,
            )
        )
        report["wall_s"][name] = time.perf_counter() - t1
        write_report(report, options.out)
    report["wall_s"]["total"] = time.perf_counter() - t0
    report["complete"] = True
    report["machine"]["load_average_end"] = load_average()
    return report, write_report(report, options.out)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}
