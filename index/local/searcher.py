"""Searching one local index version: dense (FAISS) and lexical (bm25s) candidates, fused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from akhbar.index.base import NO_FILTERS, Candidates, Filters, IndexIntegrityError, Mode, Passage
from akhbar.index.fusion import FusionParams, rank
from akhbar.index.lexical import LexicalIndex
from akhbar.index.local.chunktable import ChunkTable
from akhbar.index.local.dense import DenseIndex, DenseParams
from akhbar.index.local.versions import check_format, read_manifest
from akhbar.index.model_build import file_digest


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

    @property
    def count(self) -> int:
        return len(self.table)

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
        side alone, for comparisons in eval."""
        mask = self.table.mask(
            languages=filters.languages,
            outlets=filters.outlets,
            since=filters.since,
            until=filters.until,
        )
        n_cand = max(self.fusion.candidates, 4 * k)
        allowed = None if mask is None else self.table.int_ids[mask]
        if allowed is not None and len(allowed) == 0:
            return Candidates.empty()
        q = query_vector.reshape(1, -1)
        d_scores, d_ids = self.dense.search(q, n_cand, allowed)
        found = d_ids[0] >= 0
        dense_of = {
            row: float(score)
            for row, score in zip(
                (self.table.row_of(i) for i in d_ids[0][found]), d_scores[0][found], strict=True
            )
            if row is not None
        }
        lex_all = self.lexical.scores_in_passage_language(
            question, self.table.lang_codes, self.table.languages, mask
        )
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
        dense_arr = self.dense.exact_scores(rows_arr, query_vector)
        if dense_arr is None:
            if extra:
                vecs = self.dense.reconstruct(self.table.int_ids[extra])
                for r, v in zip(extra, vecs, strict=True):
                    dense_of[r] = float(v @ query_vector)
            dense_arr = np.array([dense_of[int(r)] for r in rows_arr], np.float32)
        return rank(
            rows_arr,
            dense_arr,
            lex_all[rows_arr],
            self.table.lang_codes[rows_arr],
            len(rows_arr) - len(extra),  # the dense side's own candidates come first
            self.fusion,
            mode,
        )

    def passages(self, keys: Sequence[int] | np.ndarray) -> list[Passage]:
        return self.table.get_rows(keys)

    def close(self) -> None:
        self.table.close()
        self.dense.close()
