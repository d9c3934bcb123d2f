"""Throwaway indexes for evaluation, built and opened through the index protocol.

Every index lives in a temporary directory (or in memory, for the memory backend), on the
backend the settings name (``akhbar eval --backend NAME``). Only two things are shared
with the user's data home: the built model (read) and the embedding cache (read and
filled), so a text is never encoded twice across eval runs and `akhbar index`, and the
user's store and index versions are never written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

from akhbar.corpus.models import Article
from akhbar.corpus.store import Store
from akhbar.eval.benchmarks import Benchmark
from akhbar.index.base import IndexReader, Progress
from akhbar.index.encoder import Encoder
from akhbar.index.prepare import ChunkingParams
from akhbar.pipeline import open_backend, run_ingest, sample_corpus_path
from akhbar.settings import Settings

# Far above any XQuAD/PIAF paragraph, so one benchmark doc is exactly one chunk and the
# doc, not a slice of it, is what gets ranked.
BENCHMARK_MAX_CHARS = 100_000


def scratch_settings(user: Settings, home: Path) -> Settings:
    """The user's settings with ``home`` moved to a scratch dir whose ``models`` and
    ``cache`` are links to the user's, since Settings derives both paths from ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    user.cache_dir.mkdir(parents=True, exist_ok=True)
    for name, target in (("models", user.models_dir), ("cache", user.cache_dir)):
        link = home / name
        if not link.exists():
            link.symlink_to(target.resolve(), target_is_directory=True)
    return user.model_copy(update={"home": home})


def build_sample_index(
    user: Settings,
    encoder: Encoder,
    home: Path,
    progress: Progress | None = None,
    extra: Iterable[Article] = (),
) -> tuple[IndexReader, dict[str, str]]:
    """Ingest and index the bundled sample in ``home``, plus ``extra`` articles indexed
    beside it (the eval set's distractors: indexed, not stored, so the sample's ingest
    stays what the service does); returns the opened index and the language of every
    article (the passage side of the language slices)."""
    settings = scratch_settings(user, home)
    # The scratch home's own SQLite store whatever the backend: eval never writes the
    # served store (with the postgres backend, the database's).
    with Store(settings.store_path) as store:
        run_ingest(settings, [str(sample_corpus_path())], store=store)
    # A root of its own, even where the backend would pick the same folder: the postgres
    # backend then keeps the eval index in a scratch schema, not the served one.
    backend = open_backend(settings, encoder, root=settings.index_dir)
    extra = list(extra)
    digest = hashlib.sha256()
    for article in extra:
        digest.update(f"{article.id}\t{article.text}\n".encode())
    with Store(settings.store_path) as store:
        backend.build(
            chain(store.iter_articles(), extra),
            corpus_checksum=f"{store.checksum()}+{digest.hexdigest()[:16]}",
            progress=progress,
        )
        languages = {a.id: a.language for a in store.iter_articles(include_duplicates=True)}
    languages.update({a.id: a.language for a in extra})
    return backend.open(), languages


def benchmark_articles(bench: Benchmark) -> list[Article]:
    # No title: embed_text then encodes the paragraph alone, as the benchmark defines it.
    return [
        Article(id=doc_id, title="", text=text, language=lang)
        for doc_id, (text, lang) in bench.docs.items()
    ]


def build_benchmark_index(
    bench: Benchmark,
    user: Settings,
    encoder: Encoder,
    root: Path,
    progress: Progress | None = None,
) -> tuple[IndexReader, float]:
    """Index ``bench.docs`` under ``root``; returns the opened index and the build seconds."""
    digest = hashlib.sha256()
    for doc_id, (text, _) in sorted(bench.docs.items()):
        digest.update(f"{doc_id}\t{text}\n".encode())
    backend = open_backend(
        user.model_copy(update={"keep_versions": 1}),
        encoder,
        # Sentence vectors as the service's index has them: the rerank reads them.
        chunking=ChunkingParams(
            max_chars=BENCHMARK_MAX_CHARS, overlap_sentences=0, second_view=user.second_view
        ),
        root=root,
    )
    report = backend.build(
        benchmark_articles(bench), corpus_checksum=digest.hexdigest(), progress=progress
    )
    return backend.open(report.version), report.seconds
