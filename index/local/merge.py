"""Folding a delta into a new version: the version's live passages and the delta's, written
as one version folder, from the vectors already stored (nothing is encoded again)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article, Chunk
from akhbar.index.base import Passage
from akhbar.index.local.build import write_version_files
from akhbar.index.local.dense import DenseSizing
from akhbar.index.local.searcher import LocalReader

_PAGE = 2000


@dataclass
class Merged:
    articles: int
    chunks: int
    manifest: dict  # the fields of the new version's manifest that describe its contents


def _live_passages(reader: LocalReader) -> tuple[list[Passage], np.ndarray]:
    """The reader's passages (version rows it does not hide, then the delta's) and their
    fp32 vectors, in that order."""
    table = reader.table
    rows = np.arange(len(table), dtype=np.int64)
    if reader.delta is not None and len(reader.delta.hidden_rows):
        rows = np.setdiff1d(rows, reader.delta.hidden_rows)
    passages: list[Passage] = []
    vectors: list[np.ndarray] = []
    for start in range(0, len(rows), _PAGE):
        page = rows[start : start + _PAGE]
        passages.extend(table.get_rows(page))
        vectors.append(reader.dense.stored_vectors(page, table.int_ids[page]))
    if reader.delta is not None:
        passages.extend(reader.delta.live_passages())
        vectors.append(reader.delta.live_vectors())
    dim = reader.dense.dimension
    return passages, (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32))


def merge_into_staging(reader: LocalReader, staging: Path, sizing: DenseSizing) -> Merged:
    """Write the reader's passages (version and delta) into ``staging`` as a version."""
    passages, vectors = _live_passages(reader)
    if not passages:
        raise ValueError("nothing to merge into: every passage was deleted")
    chunks: list[Chunk] = [p.chunk for p in passages]
    articles: dict[str, Article] = {}
    for p in passages:
        # The chunk table reads an article's citation fields; its text is in the chunks.
        articles.setdefault(
            p.chunk.article_id,
            Article(
                id=p.chunk.article_id,
                title=p.title,
                text="",
                language=p.chunk.language,
                kind=p.kind,  # type: ignore[arg-type]
                outlet=p.outlet,
                url=p.url,
                published=p.published,
            ),
        )
    params, files = write_version_files(
        staging, chunks, articles, vectors, [p.sentence_vectors for p in passages], sizing
    )
    return Merged(
        articles=len(articles),
        chunks=len(chunks),
        manifest={
            "counts": {"articles": len(articles), "chunks": len(chunks)},
            "dense": params.to_dict(),
            "files": files,
        },
    )
