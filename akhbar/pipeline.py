"""The pipeline's operations, shared by the CLI, the HTTP admin routes and eval."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import IngestReport
from akhbar.corpus.poller import Poller, PollerOptions, PollResult
from akhbar.corpus.sources import iter_sources
from akhbar.corpus.sources.fetch import Fetcher
from akhbar.corpus.store import ArticleStore, SqliteStore, Store
from akhbar.corpus.store.errors import StoreUnavailableError
from akhbar.index.base import BuildReport, IndexBackend, IndexStateError, Progress
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.local import DeltaPolicy, LocalIndex
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
        max_chars=settings.chunk_chars,
        overlap_sentences=settings.chunk_overlap_sentences,
        second_view=settings.second_view,
    )


def fusion_params(settings: Settings) -> FusionParams:
    return FusionParams(
        lexical_weight=settings.lexical_weight,
        abstain_threshold=settings.abstain_threshold,
        rerank_depth=settings.rerank_depth,
    )


def dense_sizing(settings: Settings) -> DenseSizing:
    return DenseSizing(
        exact_max=settings.local.exact_index_max, compact_min=settings.local.compact_index_min
    )


def fetcher(settings: Settings) -> Fetcher:
    """The SSRF-checked fetcher every URL read goes through (ingest, admin, feeds)."""
    return Fetcher(
        timeout=settings.fetch_timeout_s,
        max_bytes=settings.fetch_max_bytes,
        allow_private=settings.allow_private_urls,
    )


def feed_poller(
    settings: Settings, store: Store, on_result: Callable[[PollResult], None] | None = None
) -> Poller:
    """The feed poller, landing items through the same ``ingest`` as `akhbar ingest`."""
    feeds = settings.feeds
    feed_fetcher = replace(
        fetcher(settings), timeout=feeds.timeout_s, total_timeout=feeds.timeout_s
    )
    options = PollerOptions(
        workers=feeds.workers,
        timeout_s=feeds.timeout_s,
        host_delay_s=feeds.host_delay_s,
        full_text_below=feeds.full_text_below,
        max_backoff_s=feeds.max_backoff_s,
    )
    return Poller(store, feed_fetcher, options, land=ingest, on_result=on_result)


def run_ingest(
    settings: Settings,
    targets: Sequence[str],
    *,
    store: Store | None = None,
    on_item: Callable[[str], None] | None = None,
    encoder: Encoder | None = None,
) -> IngestReport:
    """Read ``targets`` into the store; with ``encoder``, then index what was committed
    (``catch_up_index``), so it is answerable before any rebuild."""
    settings.home.mkdir(parents=True, exist_ok=True)
    own = store is None
    store = store or open_store(settings)
    try:
        items = iter_sources(targets, fetcher=fetcher(settings), max_bytes=settings.fetch_max_bytes)
        report = ingest(store, items, on_item=on_item)
        if encoder is not None:
            catch_up_index(open_backend(settings, encoder), store)
        return report
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
        policy=DeltaPolicy(settings.local.delta_max_chunks, settings.local.delta_max_age_s),
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


def database_url(settings: Settings) -> str:
    """AKHBAR_DATABASE_URL, else the embedded database's (``akhbar db start``)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from akhbar.index.postgres.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.home / "postgres")
    url = embedded.url()
    if url is None or not embedded.status().running:
        raise IndexStateError(
            "the postgres backend needs a database: set AKHBAR_DATABASE_URL, or run "
            "`akhbar db start` for the embedded one"
        )
    return url


def open_store(settings: Settings) -> ArticleStore:
    """The article store: with the postgres backend, in the index's database and schema
    (checked at start-up as the index's is), so every API process shares it; else the
    SQLite file under the home."""
    if settings.backend != "postgres":
        return SqliteStore(settings.store_path)
    try:
        import psycopg

        from akhbar.corpus.store.postgres import PostgresStore
        from akhbar.index.postgres.schema import check
    except ImportError as exc:
        raise IndexStateError(
            f"the postgres backend needs the postgres extra (pip install -e '.[postgres]'): {exc}"
        ) from exc
    url = database_url(settings)
    namespace = settings.postgres.namespace
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            check(conn, namespace)
        return PostgresStore(url, namespace=namespace, pool_size=settings.postgres.pool_size)
    except psycopg.Error as exc:
        raise IndexStateError(f"cannot open the article store in the database: {exc}") from exc


def store_errors(opening: bool = False) -> tuple[type[Exception], ...]:
    """What a failing store raises, whichever engine, for callers that report it; with
    ``opening``, also what ``open_store`` raises (no file, no database, wrong schema)."""
    errors: list[type[Exception]] = [sqlite3.Error, StoreUnavailableError]
    if opening:
        errors += [OSError, IndexStateError]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(errors)


def store_location(settings: Settings) -> str:
    """Where the store is, for messages (no credentials)."""
    if settings.backend == "postgres":
        return f"the database (schema {settings.postgres.namespace})"
    return str(settings.store_path)


def postgres_index(
    settings: Settings,
    encoder: Encoder,
    chunking: ChunkingParams | None = None,
    root: Path | None = None,
) -> IndexBackend:
    """The served index lives in the configured schema, which `akhbar db migrate` keeps
    current. With a scratch ``root`` (eval, tests) it lives in a schema of its own named
    from the folder, created on first use, so it never touches the served one."""
    try:
        from akhbar.index.postgres.backend import PostgresIndex
    except ImportError as exc:
        raise IndexStateError(
            f"the postgres backend needs the postgres extra (pip install -e '.[postgres]'): {exc}"
        ) from exc
    pg = settings.postgres
    namespace = pg.namespace
    if root is not None:
        digest = hashlib.sha1(str(root.absolute()).encode()).hexdigest()[:16]
        namespace = f"{pg.namespace}_{digest}"
    return PostgresIndex(
        database_url(settings),
        encoder,
        namespace=namespace,
        cache_path=embeddings_path(settings),
        chunking=chunking or chunking_params(settings),
        fusion=fusion_params(settings),
        keep_versions=settings.keep_versions,
        read_urls=tuple(u.get_secret_value() for u in settings.database_read_urls),
        hnsw_min_passages=pg.hnsw_min_passages,
        hnsw_m=pg.hnsw_m,
        hnsw_ef_construction=pg.hnsw_ef_construction,
        hnsw_build_memory=pg.hnsw_build_memory,
        ef_search=pg.ef_search,
        pool_size=pg.pool_size,
        create_schema=root is not None,
    )


def postgres_version(settings: Settings) -> str | None:
    """The served postgres index's version, read without loading a model (CLI checks)."""
    try:
        from akhbar.index.postgres.backend import served_version
    except ImportError as exc:
        raise IndexStateError(
            f"the postgres backend needs the postgres extra (pip install -e '.[postgres]'): {exc}"
        ) from exc
    return served_version(database_url(settings), settings.postgres.namespace)


# The backends AKHBAR_BACKEND can name. Each is made from the settings and the encoder;
# eval passes its own chunking and a scratch folder (where the backend keeps files, or,
# for postgres, which names its schema).
BACKENDS: dict[str, Callable[..., IndexBackend]] = {
    "local": local_index,
    "memory": memory_index,
    "postgres": postgres_index,
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
    store = store or open_store(settings)
    try:
        backend = open_backend(settings, encoder)
        if follows_store(backend):
            # Read before the articles: what is committed during the build is after it,
            # so the delta (carried over to the new version) or the next catch-up keeps it.
            seq = store.change_seq()
            return backend.build(
                store.iter_articles(),
                corpus_checksum=store.checksum(),
                progress=progress,
                store_seq=seq,
            )
        return backend.build(
            store.iter_articles(), corpus_checksum=store.checksum(), progress=progress
        )
    finally:
        if own:
            store.close()


def catch_up_index(backend: IndexBackend, store: Store) -> int:
    """Make what the store committed searchable without a rebuild, for a backend that
    follows the store (local: its delta; postgres: the served generation); returns the
    articles read. Safe to call from any process, any number of times."""
    if isinstance(backend, LocalIndex) and backend.current_version() is None:
        return 0
    return backend.catch_up(store) if follows_store(backend) else 0  # type: ignore[attr-defined]


def follows_store(backend: IndexBackend) -> bool:
    """Whether ``catch_up_index`` does anything for this backend. By name for postgres:
    its module needs the optional extra, so it is not imported here."""
    return isinstance(backend, LocalIndex) or backend.name == "postgres"


def merge_due(backend: IndexBackend) -> bool:
    """Whether the backend's delta has passed its size or age threshold."""
    return isinstance(backend, LocalIndex) and backend.merge_due()


def merge_index(backend: IndexBackend) -> BuildReport | None:
    """Fold the backend's delta into a new version; None when there is none."""
    return backend.merge() if isinstance(backend, LocalIndex) else None


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
