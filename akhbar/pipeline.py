"""The pipeline's operations, shared by the CLI, the HTTP admin routes and eval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import IngestReport
from akhbar.corpus.sources import iter_sources
from akhbar.corpus.sources.fetch import Fetcher
from akhbar.corpus.store import Store
from akhbar.index.base import BuildReport, IndexBackend, IndexStateError, Progress
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.local import LocalIndex
from akhbar.index.local.build import manifest_matches
from akhbar.index.local.dense import DenseSizing
from akhbar.index.local.versions import VersionStore, read_manifest
from akhbar.index.memory import MemoryIndex
from akhbar.index.prepare import ChunkingParams
from akhbar.settings import Settings


def sample_corpus_path() -> Path:
    """The bundled sample: the seed aggregator page and 100 French Wikinews articles."""
    return Path(str(resources.files("akhbar.corpus").joinpath("data/sample")))


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(
        max_chars=settings.chunk_chars, overlap_sentences=settings.chunk_overlap_sentences
    )


def fusion_params(settings: Settings) -> FusionParams:
    return FusionParams(
        lexical_weight=settings.lexical_weight, abstain_threshold=settings.abstain_threshold
    )


def dense_sizing(settings: Settings) -> DenseSizing:
    return DenseSizing(
        exact_max=settings.local.exact_index_max, compact_min=settings.local.compact_index_min
    )


def run_ingest(
    settings: Settings,
    targets: Sequence[str],
    *,
    store: Store | None = None,
    on_item: Callable[[str], None] | None = None,
) -> IngestReport:
    fetcher = Fetcher(timeout=settings.fetch_timeout_s, max_bytes=settings.fetch_max_bytes)
    settings.home.mkdir(parents=True, exist_ok=True)
    own = store is None
    store = store or Store(settings.store_path)
    try:
        items = iter_sources(targets, fetcher=fetcher, max_bytes=settings.fetch_max_bytes)
        return ingest(store, items, on_item=on_item)
    finally:
        if own:
            store.close()


def embeddings_path(settings: Settings) -> Path:
    """The embedding cache every build and eval run shares."""
    return settings.cache_dir / "embeddings.sqlite3"


def local_index(
    settings: Settings,
    encoder: Encoder,
    chunking: ChunkingParams | None = None,
    root: Path | None = None,
) -> LocalIndex:
    return LocalIndex(
        root or settings.index_dir,
        encoder,
        cache_path=embeddings_path(settings),
        chunking=chunking or chunking_params(settings),
        fusion=fusion_params(settings),
        sizing=dense_sizing(settings),
        keep_versions=settings.keep_versions,
    )


def memory_index(
    settings: Settings,
    encoder: Encoder,
    chunking: ChunkingParams | None = None,
    root: Path | None = None,
) -> MemoryIndex:
    return MemoryIndex(
        encoder,
        cache_path=embeddings_path(settings),
        chunking=chunking or chunking_params(settings),
        fusion=fusion_params(settings),
    )


# The backends AKHBAR_BACKEND can name. Each is made from the settings and the encoder;
# eval passes its own chunking and a scratch folder (where the backend keeps files).
BACKENDS: dict[str, Callable[..., IndexBackend]] = {
    "local": local_index,
    "memory": memory_index,
}


def open_backend(
    settings: Settings,
    encoder: Encoder,
    *,
    chunking: ChunkingParams | None = None,
    root: Path | None = None,
) -> IndexBackend:
    return BACKENDS[settings.backend](settings, encoder, chunking, root)


def run_index(
    settings: Settings,
    encoder: Encoder,
    *,
    store: Store | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    own = store is None
    store = store or Store(settings.store_path)
    try:
        return open_backend(settings, encoder).build(
            store.iter_articles(), corpus_checksum=store.checksum(), progress=progress
        )
    finally:
        if own:
            store.close()


def unchanged_version(settings: Settings) -> str | None:
    """The current index version if building now would remake it (same corpus, model and
    index settings, see ``manifest_matches``), else None. Loads no model."""
    try:
        path = VersionStore(settings.index_dir).current_path()
        manifest = read_manifest(path)
    except IndexStateError:
        return None
    if not settings.store_path.exists():
        return None
    with Store(settings.store_path) as store:
        checksum = store.checksum()
    same = manifest_matches(
        manifest,
        model=settings.model,
        chunking=chunking_params(settings),
        fusion=fusion_params(settings),
        sizing=dense_sizing(settings),
        corpus_checksum=checksum,
    )
    return path.name if same else None
