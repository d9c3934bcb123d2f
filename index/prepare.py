"""Engine-neutral preparation of a build: chunking, title prefix, cached encoding, sentence
vectors. Every backend writes what ``prepare`` returns; none re-implements it."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from akhbar.corpus.chunking import chunk_article
from akhbar.corpus.models import Article, Chunk
from akhbar.index.base import Progress
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder, SentencePoolingEncoder, Spans


@dataclass(frozen=True)
class ChunkingParams:
    max_chars: int = 700
    overlap_sentences: int = 1
    embed_title: bool = True  # article chunks are encoded as "title\ntext" for context
    sentence_vectors: bool = True  # pool a vector per sentence, for the highlight


def embed_text(chunk: Chunk, article: Article, params: ChunkingParams) -> str:
    wants_title = params.embed_title and article.kind != "headline" and article.title
    if wants_title and not chunk.text.startswith(article.title):
        return f"{article.title}\n{chunk.text}"
    return chunk.text


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


@dataclass
class Prepared:
    """A build's passages, their articles and vectors, in chunk order."""

    articles: dict[str, Article]
    chunks: list[Chunk]
    encoded: Encoded


def prepare(
    articles: Iterable[Article],
    *,
    encoder: Encoder,
    cache: EmbeddingCache | None,
    chunking: ChunkingParams,
    progress: Progress | None = None,
) -> Prepared:
    """Chunk ``articles`` and encode every chunk (title first, see ``embed_text``), with a
    pooled vector per sentence where ``chunking`` asks for them."""
    by_id: dict[str, Article] = {}
    chunks: list[Chunk] = []
    for article in articles:
        by_id[article.id] = article
        chunks.extend(chunk_article(article, chunking.max_chars, chunking.overlap_sentences))
    if progress:
        progress("chunk", len(chunks), len(chunks))
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
    return Prepared(by_id, chunks, enc)
