"""The local backend: FAISS + bm25s version folders on one machine's disk.

A version is immutable; ``build`` writes a new one beside the served one and switches
``CURRENT`` atomically (see ``versions.py``). Article-by-article writes are not supported:
rebuild (``akhbar index``; embeddings are cached, so only changed text is re-encoded).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from akhbar.corpus.models import Article
from akhbar.index.base import BuildReport, Progress, WritesNotSupportedError
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.local.build import build_index
from akhbar.index.local.dense import DenseSizing
from akhbar.index.local.searcher import LocalReader
from akhbar.index.local.versions import VersionStore
from akhbar.index.prepare import ChunkingParams

_NO_WRITES = "local backend: use build (`akhbar index`); it re-encodes only changed text"


class LocalIndex:
    name = "local"

    def __init__(
        self,
        root: Path,
        encoder: Encoder,
        *,
        cache_path: Path,
        chunking: ChunkingParams,
        fusion: FusionParams,
        sizing: DenseSizing,
        keep_versions: int,
    ) -> None:
        self.root = root
        self.encoder = encoder
        self.cache_path = cache_path
        self.chunking = chunking
        self.fusion = fusion
        self.sizing = sizing
        self.keep_versions = keep_versions
        self._versions = VersionStore(root)

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Progress | None = None,
    ) -> BuildReport:
        cache = EmbeddingCache.for_encoder(self.cache_path, self.encoder)
        try:
            return build_index(
                articles,
                encoder=self.encoder,
                root=self.root,
                cache=cache,
                chunking=self.chunking,
                fusion=self.fusion,
                sizing=self.sizing,
                keep_versions=self.keep_versions,
                corpus_checksum=corpus_checksum,
                progress=progress,
            )
        finally:
            cache.close()

    def upsert(self, articles: Iterable[Article]) -> str:
        raise WritesNotSupportedError(_NO_WRITES)

    def delete(self, article_ids: Iterable[str]) -> str:
        raise WritesNotSupportedError(_NO_WRITES)

    def current_version(self) -> str | None:
        return self._versions.current_name()

    def open(self, version: str | None = None) -> LocalReader:
        path = (
            self._versions.current_path()
            if version is None
            else (self._versions.versions / version)
        )
        return LocalReader(path, model=self.encoder.name, dimension=self.encoder.dimension)
