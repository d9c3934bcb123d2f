"""Build a new index version from the stored articles, reusing cached embeddings."""

from __future__ import annotations

import contextlib
import hashlib
import json
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
from index.encoder import Encoder, SentencePoolingEncoder, Spans
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
    sentence_vectors: bool = True  # pool a vector per sentence, for the highlight


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


@dataclass
class Encoded:
    vectors: np.ndarray  # (n, d) float32
    sentences: list[np.ndarray] | None  # per text, (sentences, d) float16; None: not pooled
    encoded: int  # how many texts went through the encoder (the rest came from the cache)
    seconds: float  # spent encoding


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode_with_cache(
    texts: list[str],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    *,
    spans: list[Spans] | None = None,
    batch: int = 64,
    progress: Progress | None = None,
) -> Encoded:
    """Vectors for ``texts``: cached ones read back, the rest encoded and cached. With
    ``spans`` (sentence offsets into each text) and an encoder that pools them, each text's
    sentence vectors too."""
    pooled = spans is not None and isinstance(encoder, SentencePoolingEncoder)
    hashes = [_digest(t) for t in texts]
    found = cache.get_many(hashes) if cache else {}
    skeys: list[str] = []
    sfound: dict[str, np.ndarray] = {}
    if pooled:
        skeys = [_digest(f"{h}|{json.dumps(sp)}") for h, sp in zip(hashes, spans, strict=True)]
        sfound = cache.get_sentences(skeys) if cache else {}
    missing = [
        i for i, h in enumerate(hashes) if h not in found or (pooled and skeys[i] not in sfound)
    ]
    # One encoding per distinct text, longest first across the whole build, not just
    # within each batch: batches of like-length texts waste little on padding.
    todo = sorted({hashes[i]: i for i in missing}.values(), key=lambda i: -len(texts[i]))
    vectors = np.zeros((len(texts), encoder.dimension), np.float32)
    for i, h in enumerate(hashes):
        if h in found:
            vectors[i] = found[h]
    sentences: dict[int, np.ndarray] = {}
    spent = 0.0
    for start in range(0, len(todo), batch):
        idx = todo[start : start + batch]
        t0 = time.perf_counter()
        if pooled:
            vecs, sent = encoder.encode_passages_pooled(  # type: ignore[union-attr]
                [texts[i] for i in idx], [spans[i] for i in idx]
            )
        else:
            vecs, sent = encoder.encode_passages([texts[i] for i in idx]), None
        spent += time.perf_counter() - t0
        vectors[idx] = vecs
        if sent is not None:
            sentences.update({i: s.astype(np.float16) for i, s in zip(idx, sent, strict=True)})
        if cache:
            cache.put_many((hashes[i], v) for i, v in zip(idx, vecs, strict=True))
            if sent is not None:
                cache.put_sentences((skeys[i], sentences[i]) for i in idx)
        if progress:
            progress("encode", min(start + batch, len(todo)), len(todo))
    # Duplicate texts in one build share a hash: copy what was encoded to every row.
    first = {hashes[i]: i for i in todo}
    for i, h in enumerate(hashes):
        if h in first:
            vectors[i] = vectors[first[h]]
    all_sentences = None
    if pooled:
        all_sentences = [
            sfound[skeys[i]] if skeys[i] in sfound else sentences[first[hashes[i]]]
            for i in range(len(texts))
        ]
    return Encoded(vectors, all_sentences, len(todo), spent)


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
        # Sentence offsets into the encoded text, which may start with the title.
        spans = [
            [(a + len(t) - len(c.text), b + len(t) - len(c.text)) for a, b in c.sentences]
            for t, c in zip(texts, chunks, strict=True)
        ]
        enc = encode_with_cache(
            texts,
            encoder,
            cache,
            spans=spans if chunking.sentence_vectors else None,
            progress=progress,
        )
        vectors = enc.vectors

        name, staging = store.new_staging()
        dense_params = sizing.params(len(chunks))
        dense = DenseIndex.build(vectors, int_ids, dense_params)
        dense.save(staging)
        LexicalIndex.build([c.text for c in chunks], [c.language for c in chunks]).save(staging)
        ChunkTable.write(staging, chunks, by_id, int_ids, enc.sentences)
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
                for p in (
                    staging / DenseIndex.FILENAME,
                    staging / DenseIndex.EXACT_FILENAME,
                    staging / ChunkTable.ARRAYS,
                )
                if p.exists()
            },
        }
        path = store.commit(name, staging, manifest)
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
        manifest.get("format") == MANIFEST_FORMAT
        and manifest.get("model") == model
        and manifest.get("corpus_checksum") == corpus_checksum
        and manifest.get("chunking") == _plain(asdict(chunking))
        and manifest.get("fusion") == _plain(fusion.to_dict())
        and manifest.get("dense") == _plain(sizing.params(chunks).to_dict())
    )
