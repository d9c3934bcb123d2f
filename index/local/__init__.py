"""The local backend: FAISS + bm25s version folders on one machine's disk, and a delta.

A version is immutable; ``build`` writes a new one beside the served one and switches
``CURRENT`` atomically (see ``versions.py``). Articles written since (``upsert``,
``delete``, or read from the store by ``catch_up``) go into a small delta beside it
(``delta.py``), searched with it; ``merge`` folds the delta into a new version when it
grows past the policy's size or age.

Reader names: ``<version>`` is the version alone, ``<version>+<generation>`` the version
with its delta at that generation; ``current_version()`` reads both from two small files,
so every process on the home sees another's writes on its next question.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article
from akhbar.corpus.store import ChangesPrunedError, Store
from akhbar.index.base import (
    BuildReport,
    DeltaStatus,
    IndexIntegrityError,
    NoIndexError,
    Progress,
)
from akhbar.index.cache import EmbeddingCache
from akhbar.index.encoder import Encoder
from akhbar.index.fusion import FusionParams
from akhbar.index.local.build import build_index
from akhbar.index.local.delta import (
    DIRNAME,
    DeltaFiles,
    DeltaState,
    DeltaView,
    Segment,
    SegmentInfo,
    delta_lock,
)
from akhbar.index.local.dense import DenseSizing
from akhbar.index.local.merge import merge_into_staging
from akhbar.index.local.searcher import LocalReader
from akhbar.index.local.versions import VersionStore, read_manifest
from akhbar.index.prepare import ChunkingParams, prepare_cached

log = logging.getLogger(__name__)

# Articles read from the store per delta segment: bounds one catch-up's memory and the
# time the next question waits for a large backlog to start showing up.
CATCH_UP_BATCH = 500
# A delta of more writes than this is merged whatever its size (one write, one segment).
MAX_SEGMENTS = 500


@dataclass(frozen=True)
class DeltaPolicy:
    """When the delta is merged into a new version (whichever comes first)."""

    max_chunks: int = 10_000
    max_age_s: float = 3600.0


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
        policy: DeltaPolicy | None = None,
    ) -> None:
        self.root = root
        self.encoder = encoder
        self.cache_path = cache_path
        self.chunking = chunking
        self.fusion = fusion
        self.sizing = sizing
        self.keep_versions = keep_versions
        self.policy = policy or DeltaPolicy()
        self._versions = VersionStore(root)
        # What this process has opened: the latest version's reader and the newest view
        # of its delta (the next generation extends it: segments are immutable files).
        self._lock = threading.Lock()
        self._base: LocalReader | None = None
        self._view: DeltaView | None = None
        self._pruned_for: str | None = None  # the version whose read changes were pruned

    # -- whole versions ------------------------------------------------------------------

    def build(
        self,
        articles: Iterable[Article],
        *,
        corpus_checksum: str,
        progress: Progress | None = None,
        store_seq: int | None = None,
    ) -> BuildReport:
        """A new version of exactly ``articles``. With ``store_seq`` (the store's change
        sequence they were read at), the delta's writes after it carry over to the new
        version, so nothing committed during a long build goes missing at the switch."""
        cache = EmbeddingCache.for_encoder(self.cache_path, self.encoder)

        def keep(seg: SegmentInfo) -> bool:
            return store_seq is not None and seg.watermark is not None and seg.watermark > store_seq

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
                store_seq=store_seq,
                switch=lambda name, staging, manifest: self._switch(name, staging, manifest, keep),
            )
        finally:
            cache.close()

    def merge(self, progress: Progress | None = None) -> BuildReport | None:
        """Fold the current delta into a new version (no encoding: the vectors are the
        ones already stored). None when there is no delta. Raises BuildInProgressError
        while another build or merge runs. A kill at any point leaves the old version and
        its delta serving: the new one becomes current in one rename, with the delta's
        writes made meanwhile carried over."""
        t0 = time.perf_counter()
        with self._versions.lock():
            self._versions.sweep()
            self._sweep_deltas()
            base = self._versions.current_name()
            if base is None:
                return None
            state = self._state(base)
            if state.generation == 0:
                return None
            reader = self.open(f"{base}+{state.generation}")
            name, staging = self._versions.new_staging()
            counts = merge_into_staging(reader, staging, self.sizing)
            manifest = {
                **reader.manifest,
                "version": name,
                "store_seq": state.watermark,
                "corpus_checksum": f"merge of {reader.version}",
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                **counts.manifest,
            }
            manifest.pop("delta", None)
            merged_gen = state.generation
            path = self._switch(
                name, staging, manifest, lambda seg: seg.gen > merged_gen, follow=True
            )
            pruned = self._versions.prune(self.keep_versions)
        return BuildReport(
            version=name,
            path=path,
            articles=counts.articles,
            chunks=counts.chunks,
            encoded=0,
            reused=counts.chunks,
            seconds=time.perf_counter() - t0,
            encode_seconds=0.0,
            pruned=pruned,
        )

    def merge_due(self) -> bool:
        """Whether the current delta has passed the policy's size or age."""
        base = self._versions.current_name()
        if base is None:
            return False
        state = self._state(base)
        if state.generation == 0:
            return False
        old = time.time() - (state.oldest or time.time())
        return (
            state.chunks >= self.policy.max_chunks
            or old >= self.policy.max_age_s
            # Every question reads delta.json, which lists the segments: keep it short.
            or len(state.segments) >= MAX_SEGMENTS
        )

    def _switch(
        self,
        name: str,
        staging: Path,
        manifest: dict,
        keep: Callable[[SegmentInfo], bool],
        *,
        follow: bool = False,
    ) -> Path:
        """Commit a staged version, carrying over the delta segments ``keep`` names, under
        the delta lock so that no delta write falls between the two. The new delta's
        watermark is the furthest the old one or the build read the store to (``follow``:
        the old delta's even when the build names none, as a merge of it does)."""
        with delta_lock(self.root):
            old = self._versions.current_name()
            watermark = manifest.get("store_seq")
            if old is not None:
                state = self._state(old)
                if state.watermark is not None and (follow or watermark is not None):
                    watermark = max(watermark or 0, state.watermark)
                carried = [s for s in state.segments if keep(s)]
                source, new = DeltaFiles(self.root, old), DeltaFiles(self.root, name)
                new.dir.mkdir(parents=True, exist_ok=True)
                for i, seg in enumerate(carried, 1):
                    tmp = new.dir / f".carry-{i}.tmp{os.getpid()}"
                    tmp.unlink(missing_ok=True)
                    os.link(source.segment_path(seg.gen), tmp)  # segments are immutable
                    os.replace(tmp, new.segment_path(i))
                infos = tuple(replace(s, gen=i) for i, s in enumerate(carried, 1))
                if infos or watermark != manifest.get("store_seq"):
                    new.commit(DeltaState(name, watermark, infos))
            return self._versions.commit(name, staging, manifest)

    def _sweep_deltas(self) -> None:
        """Remove deltas of versions that no longer exist. Call with the build lock held."""
        folder = self.root / DIRNAME
        if not folder.exists():
            return
        live = set(self._versions.list())
        for d in folder.iterdir():
            if d.name not in live:
                for f in d.iterdir():
                    f.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    d.rmdir()

    # -- the delta -----------------------------------------------------------------------

    def _base_watermark(self, base: str) -> int | None:
        return read_manifest(self._versions.versions / base).get("store_seq")

    def _state(self, base: str) -> DeltaState:
        return DeltaFiles(self.root, base).state(self._base_watermark(base))

    def delta_state(self) -> DeltaState | None:
        """The current version's delta (None without a version)."""
        base = self._versions.current_name()
        return None if base is None else self._state(base)

    def delta_status(self, store: Store) -> DeltaStatus | None:
        """The current delta's size, age and how far the store is ahead of it."""
        state = self.delta_state()
        if state is None:
            return None
        behind = None
        if state.watermark is not None:
            behind = max(store.change_seq() - state.watermark, 0)
        age = 0.0 if state.oldest is None else max(time.time() - state.oldest, 0.0)
        return DeltaStatus(state.chunks, len(state.segments), age, behind)

    def _write(
        self,
        articles: list[Article],
        deleted: list[str],
        *,
        from_watermark: int | None = None,
        to_watermark: int | None = None,
    ) -> str | None:
        """Encode ``articles`` (outside the lock: encoding is the slow part), then commit
        one segment. With watermarks (a catch-up), None if another writer moved the delta
        on meanwhile: the caller reads the store again."""
        # The second view's passage vectors (another model, loaded for each call) are
        # left to the first question that needs them, which encodes and caches them: the
        # same vectors, so the same scores, and a write waits for e5 alone.
        chunking = replace(self.chunking, second_view=False)
        prep = prepare_cached(
            articles, encoder=self.encoder, cache_path=self.cache_path, chunking=chunking
        )
        segment = Segment.make(
            prep.articles, prep.chunks, prep.encoded.vectors, prep.encoded.sentences, deleted
        )
        with delta_lock(self.root):
            base = self._versions.current_name()
            if base is None:
                raise NoIndexError(f"no index in {self.root}: run `akhbar index` first")
            state = self._state(base)
            if to_watermark is not None and (state.watermark or 0) != (from_watermark or 0):
                return None
            gen = state.generation + 1
            files = DeltaFiles(self.root, base)
            files.write_segment(gen, segment)
            info = SegmentInfo(gen, to_watermark, time.time(), len(prep.chunks))
            watermark = state.watermark if to_watermark is None else to_watermark
            files.commit(DeltaState(base, watermark, (*state.segments, info)))
        return f"{base}+{gen}"

    def upsert(self, articles: Iterable[Article]) -> str:
        articles = list(articles)
        if self._versions.current_name() is None:
            raise NoIndexError(f"no index in {self.root}: run `akhbar index` first")
        return self._write(articles, []) or ""

    def delete(self, article_ids: Iterable[str]) -> str:
        if self._versions.current_name() is None:
            raise NoIndexError(f"no index in {self.root}: run `akhbar index` first")
        return self._write([], list(article_ids)) or ""

    def start_delta(self, watermark: int) -> None:
        """Declare that the current version holds what the store committed up to
        ``watermark`` (for a version built from articles read elsewhere, e.g. a bench
        tier); catch-ups start after it. No-op once the delta holds writes."""
        with delta_lock(self.root):
            base = self._versions.current_name()
            if base is None:
                raise NoIndexError(f"no index in {self.root}: run `akhbar index` first")
            if self._state(base).generation == 0:
                DeltaFiles(self.root, base).commit(DeltaState(base, watermark))

    def catch_up(self, store: Store) -> int:
        """Index what the store committed after the delta's watermark: written articles
        (canonical ones; a duplicate or a deleted one only hides its passages). Safe to
        run from any process at any time: it only ever redoes work. Returns the number of
        articles read."""
        done = 0
        while True:
            state = self.delta_state()
            # A version built from articles read elsewhere (no watermark: eval, a bench
            # tier, or an index from before the store numbered its writes) does not follow
            # the store until `akhbar index` rebuilds it (or ``start_delta`` says where).
            if state is None or state.watermark is None:
                return done
            self._prune_read_changes(store, state.base)
            start = state.watermark
            try:
                ids, end = store.changes_after(start, CATCH_UP_BATCH)
            except ChangesPrunedError as exc:
                now = self.delta_state()
                if now is not None and (now.base, now.watermark) != (state.base, start):
                    continue  # another writer moved the delta on meanwhile: read again
                # Behind what the store still logs (a version rolled back, another index
                # on this store pruned it): only the whole corpus says what changed.
                log.warning("%s; rebuilding the index from the store", exc)
                seq = store.change_seq()
                self.build(store.iter_articles(), corpus_checksum=store.checksum(), store_seq=seq)
                continue
            if not ids:
                return done
            live, gone = [], []
            for article_id in ids:
                a = store.get_article(article_id)
                if a is None or a.duplicate_of is not None:
                    gone.append(article_id)
                else:
                    live.append(a)
            if self._write(live, gone, from_watermark=start, to_watermark=end) is not None:
                done += len(ids)

    def _prune_read_changes(self, store: Store, base: str) -> None:
        """Once per version and process: drop the store's change rows the version holds.
        Every process on this home follows this one delta, whose watermark never falls
        below the version's; an index elsewhere that needed them sees the gap and
        rebuilds (``catch_up``)."""
        if self._pruned_for == base:
            return
        upto = self._base_watermark(base)
        if upto:
            store.prune_changes(upto)
        self._pruned_for = base

    # -- reading -------------------------------------------------------------------------

    def current_version(self) -> str | None:
        base = self._versions.current_name()
        if base is None:
            return None
        gen = DeltaFiles(self.root, base).state(None).generation
        return base if gen == 0 else f"{base}+{gen}"

    def open(self, version: str | None = None) -> LocalReader:
        """A reader of ``version`` (default: the current version with its delta)."""
        if version is None:
            self._versions.current_path()  # says clearly that there is no index
            version = self.current_version() or ""
        base, _, gen_text = version.partition("+")
        with self._lock:
            reader = self._base
            if reader is None or reader.path.name != base:
                path = self._versions.versions / base
                reader = LocalReader(
                    path, model=self.encoder.name, dimension=self.encoder.dimension
                )
                self._base, self._view = reader, None
            if not gen_text:
                return reader.with_delta(None)
            gen = int(gen_text)
            state = self._state(base)
            if gen > state.generation:
                raise IndexIntegrityError(f"index {base} has no delta generation {gen}")
            infos = [s for s in state.segments if s.gen <= gen]
            at = DeltaState(base, state.watermark, tuple(infos))
            view = self._view
            if view is not None and view.state.base == base and view.state.generation == gen:
                return reader.with_delta(view)
            files = DeltaFiles(self.root, base)

            def load(info: SegmentInfo) -> tuple[Segment, np.ndarray]:
                seg = Segment.load(files.segment_path(info.gen))
                return seg, reader.table.rows_of_articles(seg.touched)

            if view is not None and view.state.base == base and view.state.generation < gen:
                # The next generations extend the view already open: a write costs what it
                # added, not the whole delta again.
                newer = [load(i) for i in infos if i.gen > view.state.generation]
                view = view.extended(at, newer)
            else:
                view = DeltaView.build(
                    at, [load(i) for i in infos], reader.table.languages, self.encoder.dimension
                )
            if self._view is None or view.state.generation >= self._view.state.generation:
                self._view = view
            return reader.with_delta(view)
