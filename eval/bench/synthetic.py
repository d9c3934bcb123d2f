"""Synthetic index tiers (10k to 1M chunks) built as real index versions through index/.

Encoding a million passages is hours of CPU here, so a tier's vectors are the real vectors
of the sample passages, each reused with a small random perturbation and renormalised, and
its texts are the real passages cycled with a reference suffix (so BM25's vocabulary and
the chunk table have a realistic size and no two chunks collapse as duplicates). Each
synthetic article is one chunk and is stored in the tier's store, so a full ask (which
checks every hit against the store) runs exactly as in production.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from akhbar.corpus.chunking import chunk_article
from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import Article
from akhbar.corpus.sources import iter_sources
from akhbar.corpus.store import ArticleStore, Store
from akhbar.eval.bench.common import bench_settings
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.local.dense import DenseSizing
from akhbar.index.local.versions import VersionStore
from akhbar.index.prepare import embed_text, encode_with_cache
from akhbar.pipeline import (
    chunking_params,
    dense_sizing,
    embeddings_path,
    fusion_params,
    sample_corpus_path,
)
from akhbar.settings import LocalBackendSettings, Settings

SIGMA = 0.015  # per-dimension noise: cosine to the source passage's vector is ~0.96
BLOCK = 1 << 15
_REF = re.compile(r"Réf\. (\d+)\.$")
TIER_FILE = "tier.json"


@dataclass(frozen=True)
class Base:
    """The real sample chunks a tier is made from, with their real vectors."""

    articles: list[Article]  # one per chunk: the chunk's text under its article's metadata
    vectors: np.ndarray


def sample_base(settings: Settings, encoder: Encoder, limit: int | None = None) -> Base:
    """The sample's chunks and real passage vectors (through the user's embedding cache,
    so that they are encoded once across runs and `akhbar index`)."""
    params = chunking_params(settings)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite3") as store:
        ingest(store, iter_sources([str(sample_corpus_path())]))
        pairs = [
            (c, a)
            for a in store.iter_articles()
            if a.kind == "article"
            for c in chunk_article(a, params.max_chars, params.overlap_sentences)
        ]
    pairs = pairs[:limit] if limit else pairs
    texts = [embed_text(c, a, params) for c, a in pairs]
    cache = EmbeddingCache.for_encoder(embeddings_path(settings), encoder)
    try:
        vectors = encode_with_cache(texts, encoder, cache).vectors
    finally:
        cache.close()
    articles = [
        Article(
            id=a.id,
            title=a.title,
            text=c.text,
            language=c.language,
            outlet=a.outlet,
            url=a.url,
            published=a.published,
        )
        for c, a in pairs
    ]
    return Base(articles, vectors)


class SynthVectors:
    """Vectors of tier rows: base[row % B] plus noise that depends only on (seed, row).

    Noise comes in blocks of rows from one seeded generator; rows are asked for in order
    (by the build, by the recall check), so keeping the last block makes each one cost
    a single generation."""

    def __init__(self, base: np.ndarray, sigma: float, seed: int) -> None:
        self.base, self.sigma, self.seed = base, sigma, seed
        self._last: tuple[int, np.ndarray] | None = None

    def _noise(self, block: int) -> np.ndarray:
        if self._last is None or self._last[0] != block:
            rng = np.random.default_rng([self.seed, block])
            self._last = (block, rng.standard_normal((BLOCK, self.base.shape[1]), np.float32))
        return self._last[1]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.base.shape[1]), np.float32)
        for block in np.unique(rows // BLOCK):
            sel = (rows // BLOCK) == block
            r = rows[sel]
            out[sel] = (
                self.base[r % len(self.base)] + self.sigma * self._noise(int(block))[r % BLOCK]
            )
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


class PerturbedEncoder:
    """Serves the synthetic vectors to build_index, looking rows up by the text's suffix.

    Keeps the name and dimension of the real encoder, so the served index opens with it.
    The build asks for texts longest first, i.e. rows in no useful order, so all n vectors
    are generated once, in row order (block by block), and then looked up."""

    def __init__(self, real: Encoder, vectors: SynthVectors, n: int) -> None:
        self._name, self._dimension = real.name, real.dimension
        self.precision = getattr(real, "precision", "")
        self._make = lambda: vectors(np.arange(n, dtype=np.int64))
        self._all: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("queries always go through the real encoder")

    def count_query_tokens(self, text: str) -> int:
        raise NotImplementedError("queries always go through the real encoder")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if self._all is None:
            self._all = self._make()
        return self._all[np.array([int(_REF.search(t).group(1)) for t in texts], np.int64)]


def tier_articles(base: Base, n: int, max_chars: int) -> Iterator[Article]:
    """n one-chunk articles: real passages cycled, each with its own reference suffix."""
    for i in range(n):
        src = base.articles[i % len(base.articles)]
        suffix = f" Réf. {i}."
        text = src.text[: max_chars - len(suffix)].rstrip() + suffix
        yield Article(
            id=f"syn-{i:07d}",
            title=src.title,
            text=text,
            language=src.language,
            outlet=src.outlet,
            url=src.url,
            published=src.published,
        )


@dataclass
class Tier:
    n: int
    home: str
    version: str
    chunks: int
    kind: str
    storage: str
    build_s: float
    store_fill_s: float
    sigma: float
    seed: int
    base_passages: int
    exact_max: int
    compact_min: int

    def settings(self, user: Settings) -> Settings:
        return user.model_copy(
            update={
                "home": Path(self.home),
                "exact_index_max": self.exact_max,
                "compact_index_min": self.compact_min,
            }
        )


def fill_store(store: ArticleStore, articles: list[Article]) -> None:
    """The tier's articles, in one transaction (either store engine)."""
    with store.transaction() as conn:
        for a in articles:
            digest = hashlib.sha256(a.text.encode("utf-8")).hexdigest()
            store.put_article(conn, a, content_hash=digest, signature=None)


def ensure_tier(
    settings: Settings,
    encoder: Encoder,
    base: Base,
    n: int,
    work_dir: Path,
    *,
    sizing: DenseSizing | None = None,
    sigma: float = SIGMA,
    seed: int = 0,
) -> Tier:
    """Build tier ``n`` under ``work_dir`` (reused when a matching one is already there)."""
    from akhbar.index.local.build import build_index  # late: keeps this module cheap to import

    sizing = sizing or dense_sizing(settings)
    params = sizing.params(n)
    home = work_dir / f"tier-{n}-{params.kind}-{params.storage}"
    marker = home / TIER_FILE
    if marker.exists():
        tier = Tier(**json.loads(marker.read_text()))
        same = (tier.sigma, tier.seed, tier.base_passages) == (sigma, seed, len(base.articles))
        if same and VersionStore(home / "index").current_name() == tier.version:
            return tier
    s = bench_settings(
        settings,
        home,
        local=LocalBackendSettings(
            exact_index_max=sizing.exact_max, compact_index_min=sizing.compact_min
        ),
    )
    articles = list(tier_articles(base, n, chunking_params(s).max_chars))
    t0 = time.perf_counter()
    with Store(s.store_path) as store:
        fill_store(store, articles)
    fill_s = time.perf_counter() - t0
    fake = PerturbedEncoder(encoder, SynthVectors(base.vectors, sigma, seed), n)
    t0 = time.perf_counter()
    report = build_index(
        articles,
        encoder=fake,
        root=s.index_dir,
        cache=None,
        # No sentence vectors nor second view: the synthetic vectors stand for whole
        # passages only (there is no vector to serve for a sentence).
        chunking=replace(chunking_params(s), sentence_vectors=False, second_view=False),
        fusion=fusion_params(s),
        sizing=sizing,
        keep_versions=1,
        corpus_checksum=f"synthetic-{n}-{sigma}-{seed}",
    )
    build_s = time.perf_counter() - t0
    if report.chunks != n:
        raise RuntimeError(f"tier {n}: the build made {report.chunks} chunks, not one per article")
    manifest = json.loads((report.path / "manifest.json").read_text())
    tier = Tier(
        n=n,
        home=str(home),
        version=report.version,
        chunks=report.chunks,
        kind=manifest["dense"]["kind"],
        storage=manifest["dense"]["storage"],
        build_s=build_s,
        store_fill_s=fill_s,
        sigma=sigma,
        seed=seed,
        base_passages=len(base.articles),
        exact_max=sizing.exact_max,
        compact_min=sizing.compact_min,
    )
    marker.write_text(json.dumps(asdict(tier), indent=2))
    return tier
