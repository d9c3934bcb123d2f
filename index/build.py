"""Build a new index version from the stored articles, reusing cached embeddings."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from corpus.chunking import chunk_article
from corpus.models import Article, Chunk
from index.cache import EmbeddingCache
from index.chunktable import ChunkTable
from index.dense import DenseIndex, DenseSizing, chunk_int_id
from index.encoder import Encoder
from index.fusion import FusionParams
from index.lexical import LexicalIndex
from index.model_build import file_digest
from index.versions import VersionStore

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ChunkingParams:
    max_chars: int = 700
    overlap_sentences: int = 1
    embed_title: bool = True  # article chunks are encoded as "title\ntext" for context


@dataclass
class BuildReport:
    version: str
    path: Path
    articles: int
    chunks: int
    encoded: int
    reused: int
    seconds: float
    encode_seconds: float
    pruned: list[str] = field(default_factory=list)


def embed_text(chunk: Chunk, article: Article, params: ChunkingParams) -> str:
    wants_title = params.embed_title and article.kind != "headline" and article.title
    if wants_title and not chunk.text.startswith(article.title):
        return f"{article.title}\n{chunk.text}"
    return chunk.text


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def encode_with_cache(
    texts: list[str],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    *,
    batch: int = 64,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int, float]:
    """Vectors for ``texts``: cached ones read back, the rest encoded and cached.

    Returns (vectors, how many were encoded, seconds spent encoding)."""
    hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    found = cache.get_many(hashes) if cache else {}
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in found}.values())
    vectors = np.zeros((len(texts), encoder.dimension), np.float32)
    for i, h in enumerate(hashes):
        if h in found:
            vectors[i] = found[h]
    spent = 0.0
    for start in range(0, len(todo), batch):
        idx = todo[start : start + batch]
        t0 = time.perf_counter()
        vecs = encoder.encode_passages([texts[i] for i in idx])
        spent += time.perf_counter() - t0
        vectors[idx] = vecs
        if cache:
            cache.put_many((hashes[i], v) for i, v in zip(idx, vecs, strict=True))
        if progress:
            progress("encode", min(start + batch, len(todo)), len(todo))
    # Duplicate texts in one build share a hash: copy the encoded vector to every row.
    by_hash = {hashes[i]: vectors[i] for i in todo}
    for i, h in enumerate(hashes):
        if h not in found and h in by_hash:
            vectors[i] = by_hash[h]
    return vectors, len(todo), spent


def build_index(
    articles: Iterable[Article],
    *,
    encoder: Encoder,
    root: Path,
    cache: EmbeddingCache | None,
    chunking: ChunkingParams,
    fusion: FusionParams,
    sizing: DenseSizing,
    keep_versions: int,
    corpus_checksum: str,
    progress: Progress | None = None,
) -> BuildReport:
    t_start = time.perf_counter()
    store = VersionStore(root)
    with store.lock():
        store.sweep()
        by_id: dict[str, Article] = {}
        chunks: list[Chunk] = []
        for article in articles:
            by_id[article.id] = article
            chunks.extend(chunk_article(article, chunking.max_chars, chunking.overlap_sentences))
        if not chunks:
            raise ValueError("nothing to index: the store has no articles (run `akhbar ingest`)")
        if progress:
            progress("chunk", len(chunks), len(chunks))
        int_ids = np.array([chunk_int_id(c.id) for c in chunks], np.int64)
        if len(np.unique(int_ids)) != len(int_ids):
            raise ValueError("chunk id collision in 63-bit id space; rename the articles")
        texts = [embed_text(c, by_id[c.article_id], chunking) for c in chunks]
        vectors, encoded, encode_s = encode_with_cache(texts, encoder, cache, progress=progress)

        name, staging = store.new_staging()
        dense_params = sizing.params(len(chunks))
        dense = DenseIndex.build(vectors, int_ids, dense_params)
        dense.save(staging)
        LexicalIndex.build([c.text for c in chunks], [c.language for c in chunks]).save(staging)
        ChunkTable.write(staging, chunks, by_id, int_ids)
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": encoder.name,
            "dimension": encoder.dimension,
            "counts": {"articles": len(by_id), "chunks": len(chunks)},
            "chunking": asdict(chunking),
            "dense": dense_params.to_dict(),
            "fusion": fusion.to_dict(),
            "corpus_checksum": corpus_checksum,
            "libraries": _library_versions(),
            "files": {
                p.name: file_digest(p)
                for p in (staging / DenseIndex.FILENAME, staging / ChunkTable.ARRAYS)
            },
        }
        path = store.commit(name, staging, manifest)
        pruned = store.prune(keep_versions)
    return BuildReport(
        version=name,
        path=path,
        articles=len(by_id),
        chunks=len(chunks),
        encoded=encoded,
        reused=len(chunks) - encoded,
        seconds=time.perf_counter() - t_start,
        encode_seconds=encode_s,
        pruned=pruned,
    )
