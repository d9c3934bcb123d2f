"""The PostgreSQL + pgvector backend: every API process on every machine shares one index.

Builds make a new generation beside the served one and switch to it in one transaction
(the old one stays readable until it is dropped, ``keep_versions`` generations later);
upserts and deletes change the served generation in one transaction each, answerable
as soon as it commits. Versions are "<generation>.<write>" (see ``generation.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from akhbar.corpus.models import Article
from akhbar.corpus.store import ArticleStore, ChangesPrunedError
from akhbar.index.base import (
    BuildInProgressError,
    BuildReport,
    IndexIntegrityError,
    IndexStateError,
    NoIndexError,
    Passage,
    Progress,
)
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.postgres import generation as gen
from akhbar.index.postgres.pool import connection, open_pool
from akhbar.index.postgres.reader import PostgresReader
from akhbar.index.postgres.schema import check, check_namespace, migrate, use_namespace
from akhbar.index.prepare import ChunkingParams, prepare_cached

log = logging.getLogger(__name__)

_BUILD_LOCK = 0x616B6862756C64  # "akhbuld": one build at a time per database
# Store writes read per catch-up transaction: bounds the encoding done under its lock.
CATCH_UP_BATCH = 256

_STATE = (
    "SELECT g.generation, g.seq, g.manifest, g.store_seq FROM index_state s "
    "JOIN index_generations g ON g.generation = s.generation"
)


def served_version(url: str, namespace: str) -> str | None:
    """The version the index in ``namespace`` serves (None before its first build), read
    without a model or a pool: what the CLI checks before loading anything."""
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise IndexStateError(f"cannot reach the database: {exc}") from exc
    with conn:
        check(conn, namespace)
        use_namespace(conn, namespace)
        row = conn.execute(
            "SELECT g.generation, g.seq FROM index_state s "
            "JOIN index_generations g ON g.generation = s.generation"
        ).fetchone()
    return None if row is None else f"{row[0]}.{row[1]}"


class PostgresIndex:
    name = "postgres"

    def __init__(
        self,
        url: str,
        encoder: Encoder,
        *,
        namespace: str,
        cache_path: Path | None,
        chunking: ChunkingParams,
        fusion: FusionParams,
        keep_versions: int = 3,
        read_urls: tuple[str, ...] = (),
        hnsw_min_passages: int = 50_000,
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 200,
        hnsw_build_memory: str = "2GB",
        ef_search: int = 800,
        pool_size: int = 4,
        create_schema: bool = False,
    ) -> None:
        self.encoder = encoder
        self.namespace = check_namespace(namespace)
        self.cache_path = cache_path
        self.chunking = chunking
        self.fusion = fusion
        self.keep_versions = keep_versions
        self.hnsw_min_passages = hnsw_min_passages
        self.hnsw = {"m": hnsw_m, "ef_construction": hnsw_ef_construction}
        self.hnsw_build_memory = hnsw_build_memory
        self.ef_search = ef_search
        self._url = url
        with psycopg.connect(url, connect_timeout=10) as conn:
            if create_schema:
                migrate(conn, self.namespace)
            check(conn, self.namespace)
        self._pool = open_pool(url, pool_size, self.namespace)
        # Reads go to the replicas when there are any (one pool over the first; a list
        # is for a load balancer in front, or future round-robin), writes to the primary.
        self._read_pool = open_pool(read_urls[0], pool_size, self.namespace) if read_urls else None
        self._pruned_for: int | None = None  # the generation whose read changes were pruned

    def close(self) -> None:
        self._pool.close()
        if self._read_pool is not None:
            self._read_pool.close()

    # -- reading ------------------------------------------------------------------------
    def current_version(self) -> str | None:
        with connection(self._pool) as conn:
            row = conn.execute(
                "SELECT g.generation, g.seq FROM index_state s "
                "JOIN index_generations g ON g.generation = s.generation"
            ).fetchone()
        return None if row is None else f"{row[0]}.{row[1]}"

    def open(self, version: str | None = None) -> PostgresReader:
        name = version or self.current_version()
        if name is None:
            raise NoIndexError(
                f"no index in the database (schema {self.namespace!r}): run `akhbar index`"
            )
        try:
            generation, seq = (int(x) for x in name.split("."))
        except ValueError:
            raise IndexIntegrityError(f"not a postgres index version: {name!r}") from None
        # A replica that has not replayed this version yet: read it from the primary.
        for pool in (p for p in (self._read_pool, self._pool) if p is not None):
            with connection(pool) as conn:
                row = conn.execute(
                    "SELECT g.manifest, g.kept_from, g.languages, g.seq, w.passages, w.tokens "
                    "FROM index_generations g LEFT JOIN index_writes w "
                    "ON w.generation = g.generation AND w.seq = %s "
                    "WHERE g.generation = %s AND g.state <> 'building'",
                    [seq, generation],
                ).fetchone()
            if row is not None and row[3] >= seq:
                return self._reader(pool, generation, seq, row)
        raise IndexIntegrityError(f"no index version {name!r} in the database")

    def _reader(self, pool: ConnectionPool, generation: int, seq: int, row) -> PostgresReader:
        manifest, kept_from, languages, _, passages, tokens = row
        if manifest.get("format") != gen.FORMAT:
            raise IndexIntegrityError(
                f"index generation {generation} has format {manifest.get('format')}, this "
                f"release reads {gen.FORMAT}: rebuild with `akhbar index`"
            )
        if (manifest.get("model"), manifest.get("dimension")) != (
            self.encoder.name,
            self.encoder.dimension,
        ):
            raise IndexIntegrityError(
                f"index {generation}.{seq} was built with model {manifest.get('model')!r} "
                f"(dimension {manifest.get('dimension')}), but the service runs "
                f"{self.encoder.name!r} (dimension {self.encoder.dimension}): rebuild with "
                "`akhbar index`"
            )
        if seq < kept_from or passages is None:
            raise IndexIntegrityError(
                f"index version {generation}.{seq} is no longer kept (the last "
                f"{self.keep_versions} writes are)"
            )
        return PostgresReader(
            pool,
            generation=generation,
            seq=seq,
            manifest=manifest,
            passages=int(passages),
            tokens=int(tokens),
            languages=languages,
            ef_search=self.ef_search,
            replica=pool is self._read_pool,
        )

    # -- writing --------------------------------------------------------------------------
    def _prepare(
        self, articles: Iterable[Article], progress: Progress | None = None
    ) -> tuple[list[tuple[Passage, np.ndarray]], set[str], int, float]:
        prep = prepare_cached(
            articles,
            encoder=self.encoder,
            cache_path=self.cache_path,
            chunking=self.chunking,
            progress=progress,
        )
        sentences = prep.encoded.sentences
        rows = []
        for i, chunk in enumerate(prep.chunks):
            a = prep.articles[chunk.article_id]
            sv = None if sentences is None else np.asarray(sentences[i], np.float16)
            passage = Passage(chunk, a.title, a.outlet, a.url, a.published, a.kind, sv)
            rows.append((passage, prep.encoded.vectors[i]))
        return rows, set(prep.articles), prep.encoded.encoded, prep.encoded.seconds

    def _manifest(self, corpus_checksum: str, hnsw: bool) -> dict:
        return {
            "format": gen.FORMAT,
            "backend": self.name,
            "model": self.encoder.name,
            "dimension": self.encoder.dimension,
            "chunking": asdict(self.chunking),
            "fusion": self.fusion.to_dict(),
            "corpus_checksum": corpus_checksum,
            "hnsw": self.hnsw if hnsw else None,
        }

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Progress | None = None,
        store_seq: int | None = None,
    ) -> BuildReport:
        """A new generation of exactly ``articles``. With ``store_seq`` (the store's change
        number read before ``articles`` were), the generation follows the store from there
        (``catch_up``): what is committed during the build is indexed after it."""
        t0 = time.perf_counter()
        rows, ids, encoded, seconds = self._prepare(articles, progress)
        if not rows:
            raise ValueError("nothing to index: the store has no articles (run `akhbar ingest`)")
        with psycopg.connect(self._url, connect_timeout=10) as conn:
            # The server's notices, pgvector's "hnsw graph no longer fits into
            # maintenance_work_mem" above all: the build then runs many times slower.
            conn.add_notice_handler(
                lambda d: log.warning("postgres: %s %s", d.message_primary, d.message_detail or "")
            )
            use_namespace(conn, self.namespace)
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", [_BUILD_LOCK]).fetchone()
            if not got or not got[0]:
                raise BuildInProgressError("another build is writing this index: wait for it")
            conn.commit()
            try:
                return self._build(conn, rows, ids, corpus_checksum, progress, t0, encoded,
                                   seconds, store_seq)  # fmt: skip
            finally:
                conn.rollback()
                conn.execute("SELECT pg_advisory_unlock(%s)", [_BUILD_LOCK])
                conn.commit()

    def _build(self, conn, rows, ids, corpus_checksum, progress, t0, encoded, seconds, store_seq):
        # Generations a crashed build left half-made: nobody reads them (we hold the lock).
        for (orphan,) in conn.execute(
            "SELECT generation FROM index_generations WHERE state = 'building'"
        ).fetchall():
            gen.drop(conn, orphan)
            conn.execute("DELETE FROM index_generations WHERE generation = %s", [orphan])
        hnsw = len(rows) >= self.hnsw_min_passages
        manifest = self._manifest(corpus_checksum, hnsw)
        (number,) = conn.execute("SELECT nextval('index_generation_seq')").fetchone()
        conn.execute(
            "INSERT INTO index_generations (generation, state, manifest, store_seq, "
            "built_store_seq) VALUES (%s, 'building', %s, %s, %s)",
            [number, psycopg.types.json.Jsonb(manifest), store_seq, store_seq],
        )
        gen.create(conn, number, self.encoder.dimension)
        conn.commit()
        if progress:
            progress("write", 0, len(rows))
        passages, tokens, languages = gen.insert(conn, number, rows, 0)
        gen.finish(conn, number)
        if progress:
            progress("write", len(rows), len(rows))
        if hnsw:
            if progress:
                progress("hnsw", 0, 1)
            gen.create_hnsw(
                conn,
                number,
                self.encoder.dimension,
                self.hnsw["m"],
                self.hnsw["ef_construction"],
                memory=self.hnsw_build_memory,
            )
            if progress:
                progress("hnsw", 1, 1)
        conn.execute(sql.SQL("ANALYZE {}").format(gen.tables(number)[0]))
        conn.execute(sql.SQL("ANALYZE {}").format(gen.tables(number)[1]))
        conn.execute(sql.SQL("ANALYZE {}").format(gen.terms_table(number)))
        conn.execute(
            "INSERT INTO index_writes (generation, seq, passages, tokens) VALUES (%s, 0, %s, %s)",
            [number, passages, tokens],
        )
        conn.execute(
            "UPDATE index_generations SET languages = %s WHERE generation = %s",
            [sorted(languages), number],
        )
        conn.commit()
        # Marks the postings' pages all-visible, so BM25 reads them from the primary key
        # alone (VACUUM runs outside a transaction).
        conn.autocommit = True
        try:
            conn.execute(sql.SQL("VACUUM {}").format(gen.tables(number)[1]))
        finally:
            conn.autocommit = False
        # The switch: one transaction, under the lock writers take.
        conn.execute("SELECT generation FROM index_state FOR UPDATE")
        conn.execute("UPDATE index_generations SET state = 'retired' WHERE state = 'live'")
        conn.execute("UPDATE index_generations SET state = 'live' WHERE generation = %s", [number])
        conn.execute("UPDATE index_state SET generation = %s", [number])
        conn.commit()
        pruned = self._prune(conn)
        return BuildReport(
            version=f"{number}.0",
            path=None,
            articles=len(ids),
            chunks=passages,
            encoded=encoded,
            reused=passages - encoded,
            seconds=time.perf_counter() - t0,
            encode_seconds=seconds,
            pruned=pruned,
        )

    def _prune(self, conn: psycopg.Connection) -> list[str]:
        """Drop retired generations beyond the newest ``keep_versions``."""
        old = conn.execute(
            "SELECT generation FROM index_generations WHERE state = 'retired' "
            "ORDER BY generation DESC OFFSET %s",
            [max(self.keep_versions - 1, 0)],
        ).fetchall()
        for (number,) in old:
            conn.execute("DELETE FROM index_generations WHERE generation = %s", [number])
            gen.drop(conn, number)
            conn.commit()
        return [str(n) for (n,) in old]

    def _write(self, rows: list[tuple[Passage, np.ndarray]], article_ids: set[str]) -> str:
        """One write to the served generation, in one transaction (see ``_apply``)."""
        with connection(self._pool) as conn:
            state = conn.execute(_STATE + " FOR UPDATE").fetchone()
            return self._apply(conn, state, rows, article_ids)

    def _apply(
        self,
        conn: psycopg.Connection,
        state: tuple | None,
        rows: list[tuple[Passage, np.ndarray]],
        article_ids: set[str],
        store_seq: int | None = None,
    ) -> str:
        """The articles' live passages removed, ``rows`` added, the statistics of the new
        version recorded (and the store watermark moved to ``store_seq``), inside the
        caller's transaction, which holds ``state`` (the served generation) locked."""
        if state is None:
            raise NoIndexError(
                f"no index in the database (schema {self.namespace!r}) to write to: "
                "run `akhbar index` first"
            )
        number, seq, manifest, _ = state
        if (manifest["model"], manifest["dimension"]) != (
            self.encoder.name,
            self.encoder.dimension,
        ):
            raise IndexIntegrityError(
                f"the served index was built with model {manifest['model']!r}: rebuild "
                "with `akhbar index` before writing with another model"
            )
        seq += 1
        gone, gone_tokens = gen.remove(conn, number, article_ids, seq)
        added, added_tokens, languages = gen.insert(conn, number, rows, seq)
        conn.execute(
            "INSERT INTO index_writes (generation, seq, passages, tokens) "
            "SELECT generation, %s, passages - %s + %s, tokens - %s + %s "
            "FROM index_writes WHERE generation = %s AND seq = %s",
            [seq, gone, added, gone_tokens, added_tokens, number, seq - 1],
        )
        kept_from = max(0, seq - self.keep_versions + 1)
        conn.execute(
            "UPDATE index_generations SET seq = %s, kept_from = %s, "
            "languages = ARRAY(SELECT DISTINCT unnest(languages || %s::text[]) ORDER BY 1), "
            "store_seq = coalesce(%s, store_seq) WHERE generation = %s",
            [seq, kept_from, sorted(languages), store_seq, number],
        )
        gen.collect(conn, number, kept_from)
        return f"{number}.{seq}"

    def catch_up(self, store: ArticleStore) -> int:
        """Index what the store committed after the served generation's watermark
        (written articles; a deleted or duplicate one only loses its passages), a batch
        per transaction that also moves the watermark. Safe from any process on any
        machine at any time: writers queue on the served generation's row, and a batch
        another process indexed meanwhile is found done. Returns the articles read.

        Once per served generation and process, the store's change rows the generation
        was built from are pruned. A generation behind what the store still logs (another
        index on this store pruned them) is rebuilt from the whole store."""
        done = 0
        while True:
            behind: ChangesPrunedError | None = None
            with connection(self._pool) as conn:
                # Looked at without a lock first: the pollers of every node ask this often.
                state = conn.execute(_STATE).fetchone()
                if state is None or state[3] is None:
                    return done
                self._prune_read_changes(conn, store, state[0])
                if state[3] >= store.change_seq():
                    return done
                state = conn.execute(_STATE + " FOR UPDATE").fetchone()
                if state is None or state[3] is None:
                    return done
                try:
                    ids, end = store.changes_after(state[3], CATCH_UP_BATCH)
                except ChangesPrunedError as exc:
                    behind = exc
                else:
                    if not ids:
                        return done
                    live = []
                    for article_id in ids:
                        a = store.get_article(article_id)
                        if a is not None and a.duplicate_of is None:
                            live.append(a)
                    # Encoded under the lock: a second node catching up waits here rather
                    # than encoding the same batch for nothing.
                    rows, _, _, _ = self._prepare(live)
                    self._apply(conn, state, rows, set(ids), store_seq=end)
                    done += len(ids)
            if behind is not None and not self._rebuild_behind(store, state, behind):
                return done

    def _prune_read_changes(
        self, conn: psycopg.Connection, store: ArticleStore, generation: int
    ) -> None:
        if self._pruned_for == generation:
            return
        row = conn.execute(
            "SELECT built_store_seq FROM index_generations WHERE generation = %s", [generation]
        ).fetchone()
        if row is not None and row[0]:
            store.prune_changes(int(row[0]))
        self._pruned_for = generation

    def _rebuild_behind(self, store: ArticleStore, state: tuple, exc: ChangesPrunedError) -> bool:
        """Rebuild a generation the store's change log no longer reaches; False where
        another process is rebuilding it. Called outside the catch-up's transaction, whose
        locks the new generation's switch needs."""
        with connection(self._pool) as conn:
            now = conn.execute(_STATE).fetchone()
        if now is not None and (now[0], now[3]) != (state[0], state[3]):
            return True  # another process moved the index on meanwhile: read again
        log.warning("%s; rebuilding the index from the store", exc)
        seq = store.change_seq()
        try:
            self.build(store.iter_articles(), corpus_checksum=store.checksum(), store_seq=seq)
        except BuildInProgressError:
            return False  # the next catch-up reads the generation that build serves
        return True

    def upsert(self, articles: Iterable[Article]) -> str:
        rows, ids, _, _ = self._prepare(articles)
        return self._write(rows, ids)

    def delete(self, article_ids: Iterable[str]) -> str:
        return self._write([], set(article_ids))
