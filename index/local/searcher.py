"""Searching one local index version: dense (FAISS) and lexical (bm25s) candidates, fused."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from akhbar.index.base import NO_FILTERS, Candidates, Filters, IndexIntegrityError, Mode, Passage
from akhbar.index.fusion import FusionParams, rank
from akhbar.index.lexical import LexicalIndex
from akhbar.index.local.chunktable import ChunkTable
from akhbar.index.local.delta import DeltaView
from akhbar.index.local.dense import DenseIndex, DenseParams
from akhbar.index.local.versions import check_format, read_manifest
from akhbar.index.model_build import file_digest

# Hidden rows (the version's passages of articles the delta rewrote or deleted) up to this
# many are dropped from a search that many rows wider; more go through FAISS's id selector.
_HIDDEN_POSTFILTER_MAX = 1024

# A delta of this many rows has its side of a search (dense candidates, BM25) computed on a
# second thread while this one searches the version, as Lucene searches segments
# concurrently: the wall time hides most of the delta's cost (its CPU time stays). A
# smaller delta costs less than the hand-off.
_CONCURRENT_DELTA_ROWS = 1024


class LocalReader:
    """An opened, verified local index version. Read-only and safe to share between
    threads. Candidate keys are chunk-table rows."""

    def __init__(self, path: Path, *, model: str, dimension: int) -> None:
        manifest = read_manifest(path)
        self.path = path
        self.manifest = manifest
        self.version: str = manifest.get("version", path.name)
        check_format(manifest, path)
        if manifest.get("model") != model or manifest.get("dimension") != dimension:
            raise IndexIntegrityError(
                f"index {self.version} was built with model {manifest.get('model')!r} "
                f"(dimension {manifest.get('dimension')}), but the service runs {model!r} "
                f"(dimension {dimension}): rebuild with `akhbar index`"
            )
        for name, digest in manifest.get("files", {}).items():
            if file_digest(path / name) != digest:
                raise IndexIntegrityError(
                    f"index {self.version}: {name} does not match its manifest checksum"
                )
        self.fusion = FusionParams(**manifest["fusion"])
        self.answer_params = self.fusion.answer_params()
        self.dense = DenseIndex.load(path, DenseParams(**manifest["dense"]))
        self.lexical = LexicalIndex.load(path)
        self.table = ChunkTable(path)
        n = manifest["counts"]["chunks"]
        if not (self.dense.count == len(self.table) == n) or self.dense.dimension != dimension:
            raise IndexIntegrityError(
                f"index {self.version}: manifest says {n} chunks, FAISS holds "
                f"{self.dense.count}, the chunk table {len(self.table)}: rebuild the index"
            )

        self.delta: DeltaView | None = None
        # Threads start on first use; readers made by ``with_delta`` share them.
        self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="akhbar-delta")
        self.lang_codes: np.ndarray = self.table.lang_codes  # the version's rows, then the delta's
        self._owner = True

    def with_delta(self, delta: DeltaView | None) -> LocalReader:
        """This version with ``delta`` searched beside it: a new reader sharing this one's
        files (cheap), named ``<version>+<generation>``. Only the first reader closes them."""
        reader = copy.copy(self)
        reader.delta = delta if delta is not None and delta.state.generation else None
        reader._owner = False
        if reader.delta is not None:
            reader.lang_codes = np.concatenate(
                [self.table.lang_codes.astype(np.int64), reader.delta.lang_codes]
            )
            gen = reader.delta.state.generation
            reader.version = f"{self.path.name}+{gen}"
            reader.manifest = {**self.manifest, "version": reader.version,
                               "delta": {"generation": gen, "passages": delta.count}}  # fmt: skip
        return reader

    @property
    def count(self) -> int:
        if self.delta is None:
            return len(self.table)
        return len(self.table) - len(self.delta.hidden_rows) + self.delta.count

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        k: int,
        filters: Filters = NO_FILTERS,
        mode: Mode = "hybrid",
    ) -> Candidates:
        """Candidates for the top ``k``: the dense side's best and the lexical side's best
        (``max(candidates, 4k)`` each), every one scored by both. ``mode`` ranks by one
        side alone, for comparisons in eval.

        With a delta, the version's passages it hides are left out and its own passages
        compete on equal terms: exact cosines, BM25 with the version's statistics (see
        ``DeltaLexical``), one candidate list per side over both. Keys past the version's
        rows are the delta's."""
        delta = self.delta
        hidden = delta.hidden_rows if delta is not None else np.zeros(0, np.int64)
        mask = self.table.mask(
            languages=filters.languages,
            outlets=filters.outlets,
            since=filters.since,
            until=filters.until,
        )
        n_cand = max(self.fusion.candidates, 4 * k)
        # A few hidden rows are dropped from a wider search; many, through the mask.
        if len(hidden) and (mask is not None or len(hidden) > _HIDDEN_POSTFILTER_MAX):
            mask = np.ones(len(self.table), bool) if mask is None else mask.copy()
            mask[hidden] = False
        allowed = None if mask is None else self.table.int_ids[mask]
        d_mask = delta.mask(filters) if delta is not None else None
        no_delta = d_mask is None or not d_mask.any()
        if allowed is not None and len(allowed) == 0 and no_delta:
            return Candidates.empty()
        delta_side = None
        if delta is not None and d_mask is not None and not no_delta:
            delta_side = partial(self._delta_side, delta, d_mask, query_vector, question, n_cand)
        pending = (
            self._pool.submit(delta_side)
            if delta_side is not None and delta.rows >= _CONCURRENT_DELTA_ROWS
            else None
        )
        q = query_vector.reshape(1, -1)
        dense_of: dict[int, float] = {}
        if allowed is None or len(allowed):
            wide = n_cand + (len(hidden) if allowed is None else 0)
            d_scores, d_ids = self.dense.search(q, wide, allowed)
            found = d_ids[0] >= 0
            rows = self.table.rows_of(d_ids[0][found])
            known = rows >= 0
            dense_of = dict(
                zip(rows[known].tolist(), d_scores[0][found][known].tolist(), strict=True)
            )
        lex_all = self.lexical.scores_in_passage_language(
            question,
            self.table.lang_codes,
            self.table.languages,
            mask,
            delta.lexical if delta is not None else None,
        )
        if len(hidden):
            for r in hidden.tolist():
                dense_of.pop(r, None)
            lex_all[hidden] = 0.0
        n_main = len(self.table)
        lang_codes = self.lang_codes
        if delta_side is not None:
            d_rows, d_cos, d_lex = pending.result() if pending is not None else delta_side()
            dense_of.update(zip((d_rows + n_main).tolist(), d_cos.tolist(), strict=True))
            lex_all = np.concatenate([lex_all, d_lex])
        if len(dense_of) > n_cand:
            keys = np.fromiter(dense_of, np.int64, len(dense_of))
            cos = np.fromiter(dense_of.values(), np.float64, len(dense_of))
            best = np.argsort(-cos, kind="stable")[:n_cand]  # ties: the version's first
            dense_of = dict(zip(keys[best].tolist(), cos[best].tolist(), strict=True))
        # Among the chunks sharing a term, and argpartition, not argsort: at a million
        # chunks a full sort costs ~100 ms, a partition of all rows ~5. (A boolean scan:
        # flatnonzero on the floats themselves is 4x slower.)
        matched = np.flatnonzero(lex_all > 0)
        top_lex = (
            matched[np.argpartition(-lex_all[matched], n_cand)[:n_cand]]
            if len(matched) > n_cand
            else matched
        )
        extra = [int(r) for r in top_lex if int(r) not in dense_of]
        rows_arr = np.array([*dense_of, *extra], np.int64)
        main_rows = rows_arr[rows_arr < n_main]
        exact = self.dense.exact_scores(main_rows, query_vector)
        if exact is not None:
            dense_of.update(zip(main_rows.tolist(), exact.tolist(), strict=True))
        else:
            extra_main = [r for r in extra if r < n_main]
            if extra_main:
                vecs = self.dense.reconstruct(self.table.int_ids[extra_main])
                for r, v in zip(extra_main, vecs, strict=True):
                    dense_of[r] = float(v @ query_vector)
        extra_delta = np.array([r - n_main for r in extra if r >= n_main], np.int64)
        if delta is not None and len(extra_delta):
            cosines = delta.cosines(extra_delta, query_vector)
            dense_of.update(zip((extra_delta + n_main).tolist(), cosines.tolist(), strict=True))
        dense_arr = np.array([dense_of[int(r)] for r in rows_arr], np.float32)
        return rank(
            rows_arr,
            dense_arr,
            lex_all[rows_arr],
            lang_codes[rows_arr],
            len(rows_arr) - len(extra),  # the dense side's own candidates come first
            self.fusion,
            mode,
        )

    def _delta_side(
        self,
        delta: DeltaView,
        mask: np.ndarray,
        query_vector: np.ndarray,
        question: str,
        n_cand: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The delta's dense candidates (rows, exact cosines) and BM25 of every delta row."""
        rows, cosines = delta.nearest(query_vector, mask, n_cand)
        lex = delta.lexical.scores(
            question, delta.languages, self.lexical.stats, self.lexical.doc_freqs
        )
        lex[~mask] = 0.0
        return rows, cosines, lex

    def passages(self, keys: Sequence[int] | np.ndarray) -> list[Passage]:
        n_main = len(self.table)
        if self.delta is None or all(int(k) < n_main for k in keys):
            return self.table.get_rows(keys)
        mine = {
            int(k): p
            for k, p in zip(
                [int(k) for k in keys if int(k) < n_main],
                self.table.get_rows([int(k) for k in keys if int(k) < n_main]),
                strict=True,
            )
        }
        return [
            mine[int(k)] if int(k) < n_main else self.delta.passage(int(k) - n_main) for k in keys
        ]

    def close(self) -> None:
        if self._owner:
            self._pool.shutdown(wait=False)
            self.table.close()
            self.dense.close()
