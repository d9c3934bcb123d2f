"""The local implementation of the index protocol: FAISS + bm25s version directories."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from corpus.models import Article
from index.build import BuildReport, ChunkingParams, build_index
from index.cache import EmbeddingCache
from index.dense import DenseSizing
from index.encoder import Encoder
from index.fusion import FusionParams
from index.searcher import Searcher
from index.versions import VersionStore, read_manifest


class LocalIndex:
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
        progress: Callable[[str, int, int], None] | None = None,
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

    def current_version(self) -> str | None:
        return self._versions.current_name()

    def open(self, version: str | None = None) -> Searcher:
        path = (
            self._versions.current_path()
            if version is None
            else (self._versions.versions / version)
        )
        return Searcher(path, model=self.encoder.name, dimension=self.encoder.dimension)

    def versions(self) -> list[str]:
        return self._versions.list()

    def stats(self) -> dict[str, Any]:
        current = self.current_version()
        manifest = read_manifest(self._versions.versions / current) if current else {}
        return {
            "current": current,
            "versions": self.versions(),
            "counts": manifest.get("counts"),
            "dense": manifest.get("dense"),
            "fusion": manifest.get("fusion"),
            "created": manifest.get("created"),
        }
