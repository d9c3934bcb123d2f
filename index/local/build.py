"""Writing a local index version: FAISS, BM25 and the chunk table in a new version folder."""

from __future__ import annotations

import contextlib
import json
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article, Chunk
from akhbar.index.base import BuildReport, Progress
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.lexical import LexicalIndex
from akhbar.index.local.chunktable import ChunkTable
from akhbar.index.local.dense import DenseIndex, DenseParams, DenseSizing, chunk_int_id
from akhbar.index.local.versions import INDEX_FORMAT, VersionStore
from akhbar.index.model_build import file_digest
from akhbar.index.prepare import ChunkingParams, prepare


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def write_version_files(
    staging: Path,
    chunks: Sequence[Chunk],
    articles: Mapping[str, Article],
    vectors: np.ndarray,
    sentences: Sequence[np.ndarray | None],
    sizing: DenseSizing,
) -> tuple[DenseParams, dict[str, str]]:
    """Write a version's files (dense, lexical, chunk table) into ``staging``: the dense
    parameters chosen for its size and the digests its manifest pins."""
    int_ids = np.array([chunk_int_id(c.id) for c in chunks], np.int64)
    if len(np.unique(int_ids)) != len(int_ids):
        raise ValueError("chunk id collision in 63-bit id space; rename the articles")
    params = sizing.params(len(chunks))
    DenseIndex.build(vectors, int_ids, params).save(staging)
    LexicalIndex.build([c.text for c in chunks], [c.language for c in chunks]).save(staging)
    ChunkTable.write(staging, chunks, articles, int_ids, sentences)
    pinned = (
        staging / DenseIndex.FILENAME,
        staging / DenseIndex.EXACT_FILENAME,
        staging / ChunkTable.ARRAYS,
    )
    return params, {p.name: file_digest(p) for p in pinned if p.exists()}


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
    store_seq: int | None = None,
    switch: Callable[[str, Path, dict], Path] | None = None,
) -> BuildReport:
    """Build a new version from ``articles`` and make it current. ``store_seq``: the
    store's change sequence the articles were read at (the delta follows on from it);
    ``switch`` commits the staged version (default: ``VersionStore.commit``)."""
    t_start = time.perf_counter()
    store = VersionStore(root)
    with store.lock():
        store.sweep()
        prep = prepare(articles, encoder=encoder, cache=cache, chunking=chunking, progress=progress)
        by_id, chunks, enc = prep.articles, prep.chunks, prep.encoded
        if not chunks:
            raise ValueError("nothing to index: the store has no articles (run `akhbar ingest`)")
        name, staging = store.new_staging()
        dense_params, files = write_version_files(
            staging, chunks, by_id, enc.vectors, enc.sentences, sizing
        )
        manifest = {
            "format": INDEX_FORMAT,
            "version": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": encoder.name,
            "dimension": encoder.dimension,
            "counts": {"articles": len(by_id), "chunks": len(chunks)},
            "chunking": asdict(chunking),
            "dense": dense_params.to_dict(),
            "fusion": fusion.to_dict(),
            "corpus_checksum": corpus_checksum,
            "store_seq": store_seq,
            "libraries": _library_versions(),
            "files": files,
        }
        path = (switch or store.commit)(name, staging, manifest)
        pruned = store.prune(keep_versions)
    return BuildReport(
        version=name,
        path=path,
        articles=len(by_id),
        chunks=len(chunks),
        encoded=enc.encoded,
        reused=len(chunks) - enc.encoded,
        seconds=time.perf_counter() - t_start,
        encode_seconds=enc.seconds,
        pruned=pruned,
    )


def _plain(value: object) -> object:
    """As the manifest stores it (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def manifest_matches(
    manifest: dict,
    *,
    model: str,
    chunking: ChunkingParams,
    fusion: FusionParams,
    sizing: DenseSizing,
    corpus_checksum: str,
) -> bool:
    """Whether a build now would remake the version ``manifest`` describes: same manifest
    format, model, corpus (by checksum) and chunking, fusion and dense-index settings.

    The model's numeric precision and the library versions are not recorded as settings,
    so changing them alone needs a forced rebuild."""
    chunks = (manifest.get("counts") or {}).get("chunks")
    if not isinstance(chunks, int):
        return False
    return (
        manifest.get("format") == INDEX_FORMAT
        and manifest.get("model") == model
        and manifest.get("corpus_checksum") == corpus_checksum
        and manifest.get("chunking") == _plain(asdict(chunking))
        and manifest.get("fusion") == _plain(fusion.to_dict())
        and manifest.get("dense") == _plain(sizing.params(chunks).to_dict())
    )
