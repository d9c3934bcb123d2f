"""Engine-neutral preparation of a build: chunking, title prefix, cached encoding, sentence
vectors. Every backend writes what ``prepare`` returns; none re-implements it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akhbar.corpus.chunking import chunk_article
from akhbar.corpus.models import Article, Chunk
from akhbar.index.base import Progress
from akhbar.index.cache import EmbeddingCache, text_digest
from akhbar.index.encoder import Encoder
from akhbar.index.second_view import SecondView


@dataclass(frozen=True)
class ChunkingParams:
    max_chars: int = 700
    overlap_sentences: int = 1
    embed_title: bool = True  # article chunks are encoded as "title\ntext" for context
    # A vector per sentence, each sentence encoded on its own with the passage prompt:
    # what the rerank and the highlight compare the question with.
    sentence_vectors: bool = True
    sentence_encoding: str = "alone+title"  # recorded: an index of other vectors is rebuilt
    # Cache the second view's passage vectors (index/second_view.py) while indexing, so
    # questions never wait for them.
    second_view: bool = False


def embed_text(chunk: Chunk, article: Article, params: ChunkingParams) -> str:
    return titled(chunk.text, article, params)


def titled(text: str, article: Article, params: ChunkingParams) -> str:
    """``text`` as it is encoded: after the article's title, for context."""
    wants_title = params.embed_title and article.kind != "headline" and article.title
    if wants_title and not text.startswith(article.title):
        return f"{article.title}\n{text}"
    return text


@dataclass
class Encoded:
    vectors: np.ndarray  # (n, d) float32
    sentences: list[np.ndarray] | None  # per text, (sentences, d) float16; None: not asked
    encoded: int  # how many texts went through the encoder (the rest came from the cache)
    seconds: float  # spent encoding, sentences included
    sentences_encoded: int = 0  # sentence texts that went through the encoder
    sentence_seconds: float = 0.0  # the part of ``seconds`` spent on them
    second_view_seconds: float = 0.0  # the part spent on the second view's vectors


def encode_with_cache(
    texts: list[str],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    *,
    batch: int = 64,
    progress: Progress | None = None,
    stage: str = "encode",
) -> Encoded:
    """Vectors for ``texts``: cached ones read back, the rest encoded and cached."""
    hashes = [text_digest(t) for t in texts]
    found = cache.get_many(hashes) if cache else {}
    missing = [i for i, h in enumerate(hashes) if h not in found]
    # One encoding per distinct text, longest first across the whole build, not just
    # within each batch: batches of like-length texts waste little on padding.
    todo = sorted({hashes[i]: i for i in missing}.values(), key=lambda i: -len(texts[i]))
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
            progress(stage, min(start + batch, len(todo)), len(todo))
    # Duplicate texts in one build share a hash: copy what was encoded to every row.
    first = {hashes[i]: i for i in todo}
    for i, h in enumerate(hashes):
        if h in first:
            vectors[i] = vectors[first[h]]
    return Encoded(vectors, None, len(todo), spent)


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
    """Chunk ``articles`` and encode every chunk (title first, see ``embed_text``), and
    every sentence on its own where ``chunking`` asks for sentence vectors."""
    by_id: dict[str, Article] = {}
    chunks: list[Chunk] = []
    for article in articles:
        by_id[article.id] = article
        chunks.extend(chunk_article(article, chunking.max_chars, chunking.overlap_sentences))
    if progress:
        progress("chunk", len(chunks), len(chunks))
    texts = [embed_text(c, by_id[c.article_id], chunking) for c in chunks]
    enc = encode_with_cache(texts, encoder, cache, progress=progress)
    if chunking.sentence_vectors:
        sent = encode_sentences(chunks, by_id, chunking, encoder, cache, progress=progress)
        enc.sentences = sent.sentences
        enc.sentences_encoded = sent.encoded
        enc.sentence_seconds = sent.seconds
        enc.seconds += sent.seconds
    if chunking.second_view:
        enc.second_view_seconds = cache_second_view(
            [c.text for c in chunks], cache, progress=progress
        )
        enc.seconds += enc.second_view_seconds
    return Prepared(by_id, chunks, enc)


def prepare_cached(
    articles: Iterable[Article],
    *,
    encoder: Encoder,
    cache_path: Path | None,
    chunking: ChunkingParams,
    progress: Progress | None = None,
) -> Prepared:
    """``prepare`` through the embedding cache at ``cache_path``, opened for this call
    (None: encode everything)."""
    cache = EmbeddingCache.for_encoder(cache_path, encoder) if cache_path else None
    try:
        return prepare(articles, encoder=encoder, cache=cache, chunking=chunking, progress=progress)
    finally:
        if cache:
            cache.close()


def cache_second_view(
    texts: list[str],
    cache: EmbeddingCache | None,
    *,
    batch: int = 256,
    progress: Progress | None = None,
) -> float:
    """Put the second view's vectors of ``texts`` in the embedding cache (the ones it
    lacks); returns the seconds spent. Without a cache there is nowhere to keep them, and
    questions encode their candidates' texts as they need them."""
    if cache is None:
        return 0.0
    t0 = time.perf_counter()
    view = SecondView.open(cache.path)
    try:
        for start in range(0, len(texts), batch):
            view.passages(texts[start : start + batch])
            if progress:
                progress("encode second view", min(start + batch, len(texts)), len(texts))
    finally:
        view.close()
    return time.perf_counter() - t0


def encode_sentences(
    chunks: list[Chunk],
    articles: dict[str, Article],
    chunking: ChunkingParams,
    encoder: Encoder,
    cache: EmbeddingCache | None,
    *,
    progress: Progress | None = None,
) -> Encoded:
    """One float16 vector per sentence of each chunk, every sentence encoded on its own
    with the passage prompt, after the article's title as the chunk is (a chunk without
    sentence offsets counts as one sentence).

    On their own, not pooled from the passage's pass: token states pooled over a sentence
    still carry the rest of the passage and ranked no better than the passage vector,
    where a sentence's own vector matches the one sentence a question asks about. With
    the title: a news sentence alone ("He said the plant will open in May") often does
    not say what it is about (on the eval set, hit@1 0.943 without it against 0.974 with
    it, 0.948 not reranked). They share the passage vectors' cache (a text's hash,
    whichever role it plays), so a sentence seen twice is encoded once."""
    per_chunk = [
        [titled(c.text[a:b], articles[c.article_id], chunking) for a, b in c.sentences]
        if c.sentences
        else [embed_text(c, articles[c.article_id], chunking)]
        for c in chunks
    ]
    flat = [t for texts in per_chunk for t in texts]
    enc = encode_with_cache(flat, encoder, cache, progress=progress, stage="encode sentences")
    bounds = np.cumsum([0, *(len(texts) for texts in per_chunk)])
    vectors = enc.vectors.astype(np.float16)
    enc.sentences = [vectors[bounds[i] : bounds[i + 1]] for i in range(len(chunks))]
    return enc
