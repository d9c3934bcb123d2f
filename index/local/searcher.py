"""Searching one loaded index version: dense + lexical candidates, fused, collapsed."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np

from index.analysis import analyze_cached, fold
from index.chunktable import ChunkRow, ChunkTable
from index.dense import DenseIndex, DenseParams
from index.fusion import FusionParams, fuse
from index.lexical import LexicalIndex
from index.model_build import file_digest
from index.versions import MANIFEST_FORMAT_KEY, IndexIntegrityError, read_manifest

log = logging.getLogger(__name__)
_SPACE = re.compile(r"\s+")
Mode = Literal["hybrid", "dense", "lexical"]


@dataclass(frozen=True)
class Filters:
    languages: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True)
class Hit:
    row: ChunkRow
    score: float
    dense: float
    lexical: float
    highlight: tuple[int, int]
    # How far the cosine stands above the question's reference cosine (see FusionParams):
    # what abstention reads.
    margin: float


class Searcher:
    """An opened, verified index version. Read-only and safe to share between threads."""

    def __init__(self, path: Path, *, model: str, dimension: int, verify: bool = True) -> None:
        manifest = read_manifest(path)
        self.path = path
        self.manifest = manifest
        self.version: str = manifest.get("version", path.name)
        if manifest.get(MANIFEST_FORMAT_KEY) != 1:
            raise IndexIntegrityError(f"{path}: unknown manifest format")
        if manifest.get("model") != model or manifest.get("dimension") != dimension:
            raise IndexIntegrityError(
                f"index {self.version} was built with model {manifest.get('model')!r} "
                f"(dimension {manifest.get('dimension')}), but the service runs {model!r} "
                f"(dimension {dimension}): rebuild with `akhbar index`"
            )
        if verify:
            for name, digest in manifest.get("files", {}).items():
                if file_digest(path / name) != digest:
                    raise IndexIntegrityError(
                        f"index {self.version}: {name} does not match its manifest checksum"
                    )
        # Fusion is query-time only: an index recorded with older fusion fields still
        # opens, and is searched with the fields this version knows.
        known = FusionParams.__dataclass_fields__
        recorded = {k: v for k, v in manifest["fusion"].items() if k in known}
        if "abstain_reference_rank" not in recorded and "abstain_threshold" in recorded:
            # Built when the threshold applied to the raw cosine: read as a margin it would
            # mark every answer "not in the corpus". Never abstain until a rebuild records
            # a threshold of the current kind.
            log.warning("index %s: abstention threshold from an older rule; rebuild", path.name)
            del recorded["abstain_threshold"]
        self.fusion = FusionParams(**recorded)
        self.dense = DenseIndex.load(path, DenseParams(**manifest["dense"]))
        # Memory-mapped: the BM25 matrix is paged in as queries touch it.
        self.lexical = LexicalIndex.load(path, mmap=True)
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
        question_language: str,
        k: int,
        filters: Filters = Filters(),
        exclude_articles: frozenset[str] = frozenset(),
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """Top-k passages. ``mode`` picks one side alone for comparisons in eval."""
        mask = self.table.mask(
            languages=filters.languages,
            outlets=filters.outlets,
            since=filters.since,
            until=filters.until,
        )
        n_cand = max(self.fusion.candidates, 4 * k)
        allowed = None if mask is None else self.table.int_ids[mask]
        if allowed is not None and len(allowed) == 0:
            return []
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
        n_dense = len(dense_of)
        dense_arr = self.dense.exact_scores(rows_arr, query_vector)
        if dense_arr is None:
            if extra:
                vecs = self.dense.reconstruct(self.table.int_ids[extra])
                for r, v in zip(extra, vecs, strict=True):
                    dense_of[r] = float(v @ query_vector)
            dense_arr = np.array([dense_of[int(r)] for r in rows_arr], np.float32)
        # The question's reference cosine for abstention, among the dense candidates.
        ranked = np.sort(dense_arr[:n_dense])[::-1]
        reference = (
            float(ranked[min(self.fusion.abstain_reference_rank, len(ranked)) - 1])
            if len(ranked)
            else 0.0
        )
        if mode == "hybrid":
            fused = fuse(dense_arr, lex_all[rows_arr], self.table.lang_codes[rows_arr], self.fusion)
        elif mode == "dense":
            fused = dense_arr
        else:
            fused = lex_all[rows_arr]
        order = np.argsort(-fused, kind="stable")

        hits: list[Hit] = []
        seen: set[str] = set()
        q_terms = self._query_terms(question, question_language)
        for pos in order:
            row_idx = int(rows_arr[pos])
            (row,) = self.table.get_rows([row_idx])
            if row.chunk.article_id in exclude_articles:
                continue
            key = _SPACE.sub(" ", fold(row.chunk.text)).strip()
            if key in seen:  # the same headline or paragraph from two sources
                continue
            seen.add(key)
            hits.append(
                Hit(
                    row=row,
                    score=float(fused[pos]),
                    dense=float(dense_arr[pos]),
                    margin=float(dense_arr[pos]) - reference,
                    lexical=float(lex_all[row_idx]),
                    highlight=self._highlight(row, q_terms, query_vector),
                )
            )
            if len(hits) >= k:
                break
        return hits

    @staticmethod
    def _query_terms(question: str, language: str) -> set[str]:
        terms = set(analyze_cached(question, language))
        for lang in ("fr", "es", "en"):
            terms |= set(analyze_cached(question, lang))
        return terms

    def _highlight(
        self, row: ChunkRow, q_terms: set[str], query_vector: np.ndarray
    ) -> tuple[int, int]:
        """The sentence closest to the question: cosine with its pooled vector, plus a small
        bonus per shared term (numbers count double) that settles near-ties in favour of
        the sentence naming what was asked. Without sentence vectors, terms alone."""
        sentences = row.chunk.sentences or ((0, len(row.chunk.text)),)
        terms = np.array(
            [
                sum(
                    2.0 if t.isdigit() else 1.0
                    for t in set(analyze_cached(row.chunk.text[a:b], row.chunk.language)) & q_terms
                )
                for a, b in sentences
            ],
            np.float32,
        )
        vecs = row.sentence_vectors
        if vecs is not None and len(vecs) == len(sentences):
            score = (
                vecs.astype(np.float32) @ query_vector + self.fusion.highlight_term_weight * terms
            )
        else:
            score = terms
        start, end = sentences[int(np.argmax(score))]  # the first of equals
        return int(start), int(end)

    def close(self) -> None:
        self.table.close()
        self.dense.close()
