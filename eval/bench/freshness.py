"""Freshness of the local backend: from an article's commit in the store to its first answer.

Per scale tier (``synthetic.py``; its own copy under the work dir, since this bench writes):

- commit -> answerable, two ways: another writer commits (the serving engine's follower
  notices, encodes and publishes the delta), and the writer indexes at once (what the API
  and `akhbar ingest` do). Measured from the commit to the first ``ask`` whose top 10
  holds the article, asking every 10 ms.
- question latency (``QAEngine.ask``) of the version alone and of the version beside a
  delta of ``delta_chunks`` passages, the two asked in turn question by question;
- the merge of that delta into a new version.

The delta's passages come from the tier's synthetic vectors (no encoding, as the tier
itself): only the fresh articles of the first part go through the real encoder.

Run one tier: ``python -m akhbar.eval.bench.freshness --tiers 10000 --work-dir DIR``
(or ``akhbar bench freshness --tiers 10000``); ``--help`` lists the options. A second run
finds the fresh articles in the embedding cache, so run each variant on the same cache
state when comparing (e.g. once to warm, then the runs compared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article
from akhbar.corpus.store import Store
from akhbar.eval.bench.common import RESULTS_DIR, write_result
from akhbar.eval.bench.questions import eval_set_questions
from akhbar.eval.bench.synthetic import (
    SIGMA,
    Base,
    PerturbedEncoder,
    SynthVectors,
    ensure_tier,
    sample_base,
    tier_articles,
)
from akhbar.index.base import IndexBackend
from akhbar.index.encoder import Encoder
from akhbar.index.local.delta import DIRNAME
from akhbar.pipeline import chunking_params, local_index
from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

DEFAULT_TIERS = (10_000, 100_000)
POLL_S = 0.01
FRESH_PREFIX = "fresh-bench-"


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 4),
        "p95": round(float(np.percentile(a, 95)), 4),
        "max": round(float(a.max()), 4),
    }


def _fresh(base_articles: list[Article], i: int, run: str) -> Article:
    """A new article: a real passage (so its vector is a real one) under a new id, with a
    sentence of its own so it is no copy of the tier's passages. ``run`` (this run's own
    mark) keeps it out of the embedding cache an earlier run filled, so it is encoded."""
    src = base_articles[(i * 7) % len(base_articles)]
    return Article(
        id=f"{FRESH_PREFIX}{i:05d}",
        title=f"Dépêche {i} : {src.title}",
        text=f"Dépêche numéro {i} ({run}) de la rédaction, reçue à l'instant. {src.text}",
        language=src.language,
        outlet="Bench Wire",
    )


def _commit(store: Store, article: Article) -> None:
    with store.transaction() as conn:
        store.put_article(conn, article, content_hash=f"bench-{article.id}", signature=None)


def _answered(engine: QAEngine, article: Article, question: str) -> bool:
    return any(h.passage.chunk.article_id == article.id for h in engine.ask(question, 10).hits)


def _until_answered(engine: QAEngine, article: Article, question: str, t0: float) -> float:
    deadline = t0 + 120
    while not _answered(engine, article, question):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{article.id} was not answerable 120 s after its commit")
        time.sleep(POLL_S)
    return time.perf_counter() - t0


class _Pinned:
    """A backend that serves one fixed version name (``v0003``: the version alone;
    ``v0003+7``: beside that delta generation) whatever the home's current one is, so
    that the two states can be asked in turn."""

    def __init__(self, backend: IndexBackend, version: str) -> None:
        self._backend, self._version = backend, version

    def current_version(self) -> str:
        return self._version

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)


def _engine(settings: Settings, encoder: Encoder, version: str, cache: int) -> QAEngine:
    engine = QAEngine(settings, encoder, question_cache=cache)
    engine.index = _Pinned(engine.index, version)  # type: ignore[assignment]
    return engine


def _latencies(
    settings: Settings,
    encoder: Encoder,
    questions: list[str],
    states: dict[str, str],
    rounds: int = 3,
) -> dict[str, dict]:
    """Ask latency in each of ``states`` (name -> version served), the states asked in
    turn, question by question, in an order that alternates (A B, then B A), so that no
    state gets the warmer caches or the quieter minute. Two ways: with each question's
    vector cached (the index and answer layer alone) and with it encoded on every ask
    (what a first-time question costs end to end)."""
    out: dict[str, dict] = {}
    for way, cache in (("cached", 1024), ("encoded", 0)):
        engines = {name: _engine(settings, encoder, v, cache) for name, v in states.items()}
        took: dict[str, list[float]] = {name: [] for name in states}
        try:
            order = list(engines)
            for q in questions:  # warm: question vectors cached (unless the engine keeps none)
                for engine in engines.values():
                    engine.ask(q, 5)
            for r in range(rounds):
                for i, q in enumerate(questions):
                    for name in order if (r + i) % 2 == 0 else order[::-1]:
                        t0 = time.perf_counter()
                        engines[name].ask(q, 5)
                        took[name].append((time.perf_counter() - t0) * 1000)
        finally:
            for engine in engines.values():
                engine.close()
        for name in states:
            out.setdefault(name, {})[way] = _percentiles(took[name])
    return out


def _reset(settings: Settings, n: int, delta_chunks: int) -> None:
    """Forget what an earlier run of this bench wrote into the tier: its delta and its
    articles (the tier's own version and articles stay)."""
    shutil.rmtree(settings.index_dir / DIRNAME, ignore_errors=True)
    with Store(settings.store_path) as store:
        fresh = [a.id for a in store.iter_articles() if a.id.startswith(FRESH_PREFIX)]
        for article_id in [*fresh, *(f"syn-{i:07d}" for i in range(n, n + delta_chunks))]:
            store.delete_article(article_id)


def bench_freshness(
    settings: Settings,
    encoder: Encoder,
    *,
    tiers: Sequence[int] = DEFAULT_TIERS,
    work_dir: Path | None = None,
    samples: int = 20,
    delta_chunks: int = 10_000,
    queries: int = 60,
    merge_max: int | None = None,
    out_dir: Path = RESULTS_DIR,
) -> dict:
    base = sample_base(settings, encoder)
    questions = eval_set_questions(queries)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = (work_dir or Path(tmp)) / "freshness"
        for n in tiers:
            # Rebuilt when an earlier run's merge replaced the tier's version.
            tier = ensure_tier(settings, encoder, base, n, root)
            s = tier.settings(settings)
            _reset(s, n, delta_chunks)
            with Store(s.store_path) as store:
                local_index(s, encoder).start_delta(store.change_seq())
            load0 = os.getloadavg()[0]
            merge = merge_max is None or n <= merge_max
            row = _bench_tier(s, encoder, base, questions, n, samples, delta_chunks, merge)
            rows.append(row | {"load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]})
    result = {
        "benchmark": "freshness",
        "rows": rows,
        "samples": samples,
        "targets": {"commit_to_answerable_p95_s": 2.0, "query_p50_with_delta_ratio": 1.2},
        "note": "SYNTHETIC tiers (see bench scale). Fresh articles: real sample passages "
        "under new ids, encoded by the real encoder. 'follower': another writer commits, "
        f"the serving engine notices (poll {settings.local.delta_poll_s} s), encodes and "
        "publishes; 'writer': the writer indexes at once (the API, `akhbar ingest`). The "
        f"{delta_chunks}-passage delta is synthetic vectors read from the store by a "
        "catch-up (no encoding). 'follower_with_delta': the follower again beside that "
        "delta (merge policy lifted). Fresh articles carry a mark of the run, so they are "
        "encoded (never found in the cache an earlier run filled); the passage model is "
        "loaded before timing. Query latency: QAEngine.ask of the version alone and of the "
        "version beside the delta, asked in turn question by question (A B, then B A), "
        "question vectors cached ('query_ms': the index and answer layer alone) or "
        "encoded on every ask ('ask_encoded_ms': a first-time question, end to end in "
        "process). "
        "load_avg_1m before/after: the machine is shared with other work.",
    }
    write_result("freshness", result, out_dir)
    return result


def _bench_tier(
    s: Settings,
    encoder: Encoder,
    base: Base,
    questions: list[str],
    n: int,
    samples: int,
    delta_chunks: int,
    merge: bool = True,
) -> dict:
    follower, writer = [], []
    run = f"{time.time():.0f}"
    engine = QAEngine(s, encoder)
    try:
        engine.ready()
        # The passage model is loaded on a process's first write, once: not a freshness.
        engine.encoder.encode_passages(["Dépêche de mise en route."])
        with Store(s.store_path) as other:  # another writer's connection
            for i in range(samples):
                article = _fresh(base.articles, 2 * i, run)
                _commit(other, article)
                t0 = time.perf_counter()
                follower.append(_until_answered(engine, article, article.text[:200], t0))
                article = _fresh(base.articles, 2 * i + 1, run)
                t0 = time.perf_counter()
                _commit(engine.store, article)
                engine.refresh()
                writer.append(_until_answered(engine, article, article.text[:200], t0))
    finally:
        engine.close()
    # The delta: tier rows past n (new references), committed to the store and read by a
    # catch-up whose encoder serves their synthetic vectors.
    extra = list(tier_articles(base, n + delta_chunks, chunking_params(s).max_chars))[n:]
    with Store(s.store_path) as store:
        with store.transaction() as conn:
            for a in extra:
                store.put_article(conn, a, content_hash=f"bench-{a.id}", signature=None)
        synth = PerturbedEncoder(encoder, SynthVectors(base.vectors, SIGMA, 0), n + delta_chunks)
        t0 = time.perf_counter()
        whole_passages = replace(chunking_params(s), sentence_vectors=False, second_view=False)
        local_index(s, synth, whole_passages).catch_up(store)  # type: ignore[arg-type]
        catch_up_s = time.perf_counter() - t0
    delta_state = local_index(s, encoder).delta_state()
    assert delta_state is not None
    quiet = s.model_copy(update={"local": s.local.model_copy(update={"delta_poll_s": 3600})})
    both = {
        "no_delta": delta_state.base,
        "with_delta": f"{delta_state.base}+{delta_state.generation}",
    }
    lat = _latencies(quiet, encoder, questions, both)
    no_delta, with_delta = lat["no_delta"], lat["with_delta"]
    # The follower again, now beside that delta: each new generation must not cost the
    # whole delta. (No merge meanwhile: the policy is lifted for this part.)
    no_merge = {"delta_max_chunks": 10**9, "delta_max_age_s": 1e9}
    engine = QAEngine(s.model_copy(update={"local": s.local.model_copy(update=no_merge)}), encoder)
    follower_with_delta = []
    try:
        engine.ready()
        with Store(s.store_path) as other:
            for i in range(samples):
                article = _fresh(base.articles, 2 * samples + i, run)
                _commit(other, article)
                t0 = time.perf_counter()
                follower_with_delta.append(_until_answered(engine, article, article.text[:200], t0))
    finally:
        engine.close()
    t0 = time.perf_counter()
    report = local_index(s, encoder).merge() if merge else None
    merge_s = time.perf_counter() - t0 if merge else None
    return {
        "chunks": n,
        "commit_to_answerable_follower_s": _percentiles(follower),
        "commit_to_answerable_writer_s": _percentiles(writer),
        "commit_to_answerable_follower_with_delta_s": _percentiles(follower_with_delta),
        "query_ms_no_delta": no_delta["cached"],
        "query_ms_with_delta": with_delta["cached"],
        "delta_passages": delta_state.chunks if delta_state else 0,
        "query_p50_ratio": round(with_delta["cached"]["p50"] / no_delta["cached"]["p50"], 3),
        "ask_encoded_ms_no_delta": no_delta["encoded"],
        "ask_encoded_ms_with_delta": with_delta["encoded"],
        "ask_encoded_p50_ratio": round(
            with_delta["encoded"]["p50"] / no_delta["encoded"]["p50"], 3
        ),
        "delta_catch_up_s": round(catch_up_s, 2),
        "merge_s": round(merge_s, 2) if merge_s is not None else None,
        "merged_chunks": report.chunks if report else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m akhbar.eval.bench.freshness",
        description="Freshness of the local backend on synthetic tiers: ingest commit -> "
        "answerable (the serving engine following the store, and the writer indexing at "
        "once), ask latency without a delta and with one of --delta-chunks passages, and "
        "the merge. Settings come from AKHBAR_* (AKHBAR_HOME: the model and embedding "
        "cache). Note the machine's load: the result records the 1-minute load average "
        "before and after each tier.",
    )
    parser.add_argument(
        "--tiers", default="10000", help="comma-separated tier sizes in chunks (default 10000)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="keep built tiers here, reused next time"
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--samples", type=int, default=20, help="articles timed per path")
    parser.add_argument("--delta-chunks", type=int, default=10_000, help="the delta's size")
    parser.add_argument("--queries", type=int, default=60, help="questions timed per round")
    parser.add_argument(
        "--merge-max",
        type=int,
        default=None,
        help="skip the merge on tiers above this many chunks (default: merge every tier)",
    )
    args = parser.parse_args(argv)
    from akhbar.index.model_build import ensure_builtin_model
    from akhbar.service.qa import load_encoder

    settings = Settings()
    ensure_builtin_model(settings.models_dir)
    result = bench_freshness(
        settings,
        load_encoder(settings),
        tiers=[int(x) for x in args.tiers.split(",") if x],
        work_dir=args.work_dir,
        samples=args.samples,
        delta_chunks=args.delta_chunks,
        queries=args.queries,
        merge_max=args.merge_max,
        out_dir=args.out_dir,
    )
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
