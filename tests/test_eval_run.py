"""The eval runner end to end on small slices: the eval set over the real sample index,
XQuAD es→es / en→es, PIAF and the bundled XQuAD-R slice, plus the report files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from akhbar.eval.benchmarks import BUNDLED_DIR, ENV_VAR, load_piaf, load_xquad, load_xquad_r
from akhbar.eval.dataset import DEFAULT_EVAL_SET, load_eval_set
from akhbar.eval.evalset import RETRIEVAL_METRICS, best_threshold
from akhbar.eval.public import METRIC_COLUMNS, run_benchmark, run_tasks, shrink
from akhbar.eval.report import write_report
from akhbar.eval.retrieval import MODES
from akhbar.eval.run import EvalOptions, parse_benchmarks, parse_limits, run
from akhbar.settings import Settings


def _in_unit(value: float | None) -> None:
    assert value is not None and 0.0 <= value <= 1.0, value


def _tree(path: Path) -> dict[str, float]:
    return {str(p.relative_to(path)): p.stat().st_mtime for p in path.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """17 answerable questions in the three languages plus 3 unanswerable ones."""
    items = load_eval_set()
    chosen = [i for i in items if i.answerable and i.language == "fr"][:6]
    chosen += [i for i in items if i.answerable and i.language == "es"][:6]
    chosen += [i for i in items if i.answerable and i.language == "en"][:5]
    chosen += [i for i in items if not i.answerable][:3]
    path = tmp_path_factory.mktemp("set") / "small.jsonl"
    path.write_text("".join(i.model_dump_json() + "\n" for i in chosen), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def eval_set_report(
    small_set: Path, sample_settings: Settings, encoder, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Path], dict[str, float]]:
    before = _tree(sample_settings.home)
    out = tmp_path_factory.mktemp("results")
    # The sample alone: the harder corpus's 1,001 paragraphs would take minutes to encode.
    options = EvalOptions(eval_set=small_set, out=out, distractors=False)
    report, written = run(sample_settings, options, encoder)
    after = {k: v for k, v in _tree(sample_settings.home).items() if not k.startswith("cache")}
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    return report, written, changed


def test_eval_set_leaves_the_user_home_alone(eval_set_report) -> None:
    _, _, changed = eval_set_report
    # Only the shared embedding cache may change; store and index versions never.
    assert changed == {}


def test_eval_set_numbers(eval_set_report) -> None:
    report, _, _ = eval_set_report
    result = report["eval_set"]
    assert result["questions"] == 20 and result["unanswerable"] == 3
    assert set(result["retrievers"]) == set(MODES)
    for mode, r in result["retrievers"].items():
        overall = r["overall"]
        assert overall["n"] == 17
        for name in RETRIEVAL_METRICS:
            _in_unit(overall[name])
        assert overall["recall@10"] >= overall["recall@5"] >= overall["recall@1"]
        assert overall["answer_hit@5"] >= overall["answer_hit@1"]
        assert overall["mrr@10"] >= overall["recall@1"] - 1e-9
        # Slice counts add up to the answerable questions.
        assert sum(s["n"] for s in r["slices"].values()) == 17
        assert {"fr→fr", "es→fr", "en→fr"} <= set(r["slices"])
        a = r["abstention"]
        assert a["support"] == 3
        for key in ("recall", "f1"):
            _in_unit(a[key])
            _in_unit(a["best"][key])
        for b in (a, a["best"]):  # precision has no data only when nothing abstained
            if b["tp"] + b["fp"]:
                _in_unit(b["precision"])
            else:
                assert b["precision"] is None
        assert a["best"]["f1"] >= a["f1"]
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p95"], mode
    # The dense model is the backbone: on the sample it finds most gold articles.
    assert result["retrievers"]["hybrid"]["overall"]["recall@10"] >= 0.7
    assert "abstain_threshold" in result["manifest"]["fusion"]


def test_eval_set_report_files(eval_set_report) -> None:
    report, written, _ = eval_set_report
    assert {"json", "markdown", "eval-set"} <= set(written)
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 0
    assert written["eval-set"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = json.loads(written["json"].read_text(encoding="utf-8"))
    assert loaded["complete"] is True
    assert loaded["model"]["name"] == report["model"]["name"]
    assert loaded["machine"]["cores"] >= 1
    md = written["markdown"].read_text(encoding="utf-8")
    assert "| hybrid |" in md and "abstain_threshold" in md and "eval-set.png" in md


def test_benchmarks_slices(sample_settings: Settings, encoder, tmp_path: Path) -> None:
    xquad = [(shrink(load_xquad(q, "es", limit=10), 20), "xquad-es") for q in ("es", "en")]
    piaf = [(shrink(load_piaf(limit=8), 15), "piaf")]
    mini = load_xquad_r(data_dir=BUNDLED_DIR / "xquad-r-mini", limit=2)
    benches = [
        run_tasks("xquad", xquad, sample_settings, encoder, None),
        run_tasks("piaf", piaf, sample_settings, encoder, None),
        run_tasks("xquad-r-mini", [(mini, "mini")], sample_settings, encoder, None),
    ]
    es_es, en_es = benches[0]["tasks"]
    assert (es_es["pair"], en_es["pair"]) == ("es→es", "en→es")
    assert es_es["docs"] == 20 and es_es["queries"] == 10
    assert list(benches[0]["indexes"]) == ["xquad-es"]  # both tasks share one index
    for bench in benches:
        for task in bench["tasks"]:
            for mode in MODES:
                rv = task["retrievers"][mode]
                for col in METRIC_COLUMNS:
                    if col in rv:
                        _in_unit(rv[col])
                if task["metric"] == "ndcg@10":  # one relevant doc per question
                    assert rv["recall@10"] >= rv["mrr@10"] - 1e-9
    # Monolingual Spanish over 20 paragraphs is easy for the dense model.
    assert es_es["retrievers"]["dense"]["recall@10"] >= 0.9
    (mini_task,) = benches[2]["tasks"]
    assert "map@20" in mini_task["retrievers"]["hybrid"]
    assert len(mini_task["by_query_language"]) == 11

    report = {
        "date": "2026-01-01T00:00:00+00:00",
        "complete": True,
        "commit": {"hash": None, "dirty": None},
        "machine": {"cpu": "test", "cores": 1, "python": "3", "torch": "x"},
        "model": {"name": encoder.name},
        "options": {},
        "eval_set": None,
        "benchmarks": benches,
        "wall_s": {"total": 1.0},
    }
    written = write_report(report, tmp_path)
    assert {"xquad", "piaf", "xquad-r-mini"} <= set(written)
    assert "xquad-en-es" in written["markdown"].read_text(encoding="utf-8")


def test_missing_full_xquad_r_is_skipped(
    sample_settings: Settings, encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    result = run_benchmark("xquad-r", sample_settings, encoder, data_dir=tmp_path)
    assert result["tasks"] == [] and ENV_VAR in result["skipped"]


def test_best_threshold_separates_scores() -> None:
    top = {"a": 0.9, "b": 0.8, "u1": 0.5, "u2": -math.inf}
    unanswerable = {"a": False, "b": False, "u1": True, "u2": True}
    t, scores = best_threshold(top, unanswerable)
    assert 0.5 < t <= 0.8 and scores.f1 == 1.0


def test_parse_options() -> None:
    assert parse_benchmarks([]) == (True, ())
    assert parse_benchmarks(["all"]) == (True, ("xquad", "piaf", "xquad-r"))
    assert parse_benchmarks(["piaf"]) == (False, ("piaf",))
    with pytest.raises(ValueError, match="unknown benchmark"):
        parse_benchmarks(["squad"])
    assert parse_limits(["50", "xquad-r=10"]) == (50, {"xquad-r": 10})
    with pytest.raises(ValueError):
        parse_limits(["0"])
    assert EvalOptions(limit=5, limits={"piaf": 2}).limit_for("piaf") == 2
    assert DEFAULT_EVAL_SET.is_file()


def test_cli_eval(
    sample_settings: Settings, encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from akhbar.service import qa as service_qa
    from akhbar.service.cli import app

    # The session's encoder stands in for the one the command would load.
    monkeypatch.setattr(service_qa, "load_encoder", lambda _s: encoder)
    monkeypatch.setenv("AKHBAR_HOME", str(sample_settings.home))
    monkeypatch.setenv("AKHBAR_PRECISION", "fp32")
    out = tmp_path / "res"
    # Extra distractors go through the ingest pipeline: the empty record is rejected and
    # the repeated one is a duplicate, so two articles join the sample.
    extra = tmp_path / "extra.jsonl"
    records = [
        {
            "id": "x1",
            "title": "Puerto de Algeciras",
            "text": "El puerto de Algeciras movió "
            "más contenedores este año que el anterior, según la autoridad portuaria.",
            "lang": "es",
        },
        {
            "id": "x2",
            "title": "Sequía en Andalucía",
            "text": "Los embalses andaluces siguen "
            "por debajo de la mitad de su capacidad tras un invierno seco.",
            "lang": "es",
        },
        {"id": "x3", "title": "", "text": ""},
    ]
    records.append({**records[0], "id": "x4"})
    extra.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["eval", "--limit", "4", "--no-distractors", "--extra-distractors", str(extra),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert data["eval_set"]["questions"] == 4 and data["benchmarks"] == []
    corpus = data["eval_set"]["corpus"]
    assert (corpus["distractors"], corpus["extra_distractors"]) == (0, 2)
    assert "2 articles of extra.jsonl" in (out / "latest.md").read_text(encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"title": "", "text": ""}\nnot json\n', encoding="utf-8")
    bad = CliRunner().invoke(
        app, ["eval", "--limit", "4", "--extra-distractors", str(empty), "--out", str(out)]
    )
    assert bad.exit_code == 1 and "no distractor article in" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--benchmark", "nope", "--out", str(out)])
    assert bad.exit_code == 1
