"""Searching one version of a PostgreSQL index: filtered kNN and BM25 in SQL, fused here.

Scores as the reference backend does (``index/memory.py``): the dense side's best
``max(candidates, 4k)`` passages among those the filters allow, the lexical side's best as
many by BM25 (the question analysed in each passage's language), every candidate scored
by both, ranked by ``index/fusion.py``. BM25 is bm25s's (Lucene's) formula over this
version's statistics: the passage count and token total recorded by each write, and each
term's document frequency as the version has it (``generation.doc_freqs``; counted from
the postings themselves where every posting of the term is read anyway). The filters run
in SQL, on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
from psycopg import sql
from psycopg_pool import ConnectionPool

from akhbar.corpus.models import Chunk
from akhbar.index.analysis import analyze_cached
from akhbar.index.base import (
    NO_FILTERS,
    Candidates,
    Filters,
    IndexIntegrityError,
    Mode,
    Passage,
)
from akhbar.index.fusion import FusionParams, rank
from akhbar.index.lexical import lucene_idf
from akhbar.index.postgres.generation import doc_freqs, tables, vector_literal
from akhbar.index.postgres.pool import connection

# The same BM25 as the local and memory backends' LexicalIndex: bm25s's defaults.
_BM25 = bm25s.BM25()
K1, B = float(_BM25.k1), float(_BM25.b)


# Postings read in one query while choosing which terms to read whole: the rarest terms
# together, the common ones one by one.
_READ_BATCH = 20_000
# Stops early only when the unread terms fall short by more than rounding could explain.
_SAFE = 1 - 1e-9

# A term's contribution in one language: (term, language code, keys, scores).
_Part = tuple[str, int, np.ndarray, np.ndarray]


def _summed(parts: list[_Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys ascending, summed scores, language codes) of these contributions, summed in
    (term, language) order: the same floats whichever order the terms were read in."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64)
    parts = sorted(parts, key=lambda p: (p[0], p[1]))
    keys, inverse = np.unique(np.concatenate([p[2] for p in parts]), return_inverse=True)
    scores = np.bincount(
        inverse, weights=np.concatenate([p[3] for p in parts]), minlength=len(keys)
    )
    langs = np.zeros(len(keys), np.int64)
    langs[inverse] = np.concatenate([np.full(len(p[2]), p[1], np.int64) for p in parts])
    return keys, scores, langs


def _found(
    scored: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    return scored if len(scored[0]) else None


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th best of ``scores`` (0 with fewer)."""
    if len(scores) < k:
        return 0.0
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def _where(filters: Filters) -> tuple[sql.Composable, dict]:
    """The version's live rows (``%(seq)s``) that the filters allow, on alias ``c``."""
    parts = [sql.SQL("c.added <= %(seq)s AND (c.removed IS NULL OR c.removed > %(seq)s)")]
    params: dict = {}
    if filters.languages:
        parts.append(sql.SQL("c.language = ANY(%(f_languages)s)"))
        params["f_languages"] = list(filters.languages)
    if filters.outlets:
        parts.append(sql.SQL("c.outlet_key = ANY(%(f_outlets)s)"))
        params["f_outlets"] = [o.casefold() for o in filters.outlets]
    if filters.since is not None:
        parts.append(sql.SQL("c.published >= %(f_since)s"))
        params["f_since"] = filters.since
    if filters.until is not None:
        parts.append(sql.SQL("c.published <= %(f_until)s"))
        params["f_until"] = filters.until
    return sql.SQL(" AND ").join(parts), params


class PostgresReader:
    """Version (generation, seq) of an index. Safe to share between threads: each call
    takes its own connection from the pool."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        generation: int,
        seq: int,
        manifest: dict,
        passages: int,
        tokens: int,
        languages: Sequence[str],
        ef_search: int,
        replica: bool = False,
    ) -> None:
        self._pool = pool
        self.replica = replica  # read from a streaming replica, not the primary
        self.generation = generation
        self.seq = seq
        self.version = f"{generation}.{seq}"
        self.manifest = {**manifest, "version": self.version}
        self.fusion = FusionParams(**manifest["fusion"])
        self.answer_params = self.fusion.answer_params()
        self._passages = passages
        self._avg_tokens = tokens / passages if passages else 1.0
        self._languages = sorted(languages)
        self._dimension = int(manifest["dimension"])
        self._hnsw = manifest.get("hnsw") is not None
        self._ef_search = ef_search
        self._chunks, self._postings = tables(generation)

    @property
    def count(self) -> int:
        return self._passages

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        k: int,
        filters: Filters = NO_FILTERS,
        mode: Mode = "hybrid",
    ) -> Candidates:
        if not self._passages:
            return Candidates.empty()
        n_cand = max(self.fusion.candidates, 4 * k)
        where, params = _where(filters)
        params |= {"seq": self.seq, "q": vector_literal(query_vector), "n": n_cand}
        if self._hnsw:
            # Candidates from the half-precision HNSW graph; the filters are checked as
            # the scan goes, which continues until n_cand rows pass (iterative scan).
            order = sql.SQL("c.embedding::halfvec({d}) <#> %(q)s::halfvec({d})").format(
                d=sql.Literal(self._dimension)
            )
        else:
            order = sql.SQL("c.embedding <#> %(q)s::vector")
        dense_sql = sql.SQL(
            "SELECT c.key, -(c.embedding <#> %(q)s::vector), c.language FROM {chunks} c "
            "WHERE {where} ORDER BY {order} LIMIT %(n)s"
        ).format(chunks=self._chunks, where=where, order=order)
        with connection(self._pool) as conn:
            if self._hnsw:
                # Sorts off for this statement alone, so the graph's ordered scan is the one
                # plan left: pgvector costs that scan by its ef_search, and at a wide one the
                # planner preferred reading every live row, casting each to halfvec, and
                # sorting them (20k rows, ef_search 800: 160 ms, against 11 ms).
                conn.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'strict_order', true),"
                    " set_config('hnsw.ef_search', %s, true),"
                    " set_config('enable_sort', 'off', true)",
                    [str(max(self._ef_search, n_cand))],
                )
            dense_rows = conn.execute(dense_sql, params).fetchall()
            if self._hnsw:
                conn.execute("SELECT set_config('enable_sort', 'on', true)")
                # Ranked again by the exact fp32 cosine, as the reference ranks them.
                dense_rows.sort(key=lambda r: -r[1])
            lexical_rows = self._lexical(conn, question, filters, where, params, dense_rows)
        if not dense_rows and not lexical_rows:
            return Candidates.empty()
        lex_of = {int(key): float(score) for key, score, _, _, _ in lexical_rows}
        dense_keys = [int(r[0]) for r in dense_rows]
        dense_set = set(dense_keys)
        # In the lexical side's rank order (ties by key), as the reference appends them.
        extras = sorted(
            (r for r in lexical_rows if r[3] and int(r[0]) not in dense_set),
            key=lambda r: (-r[1], r[0]),
        )
        keys = np.array([*dense_keys, *(int(r[0]) for r in extras)], np.int64)
        cosines = np.array([*(r[1] for r in dense_rows), *(r[4] for r in extras)], np.float32)
        lexical = np.array([lex_of.get(int(key), 0.0) for key in keys], np.float32)
        langs = [*(r[2] for r in dense_rows), *(r[2] for r in extras)]
        codes = {lang: i for i, lang in enumerate(sorted(set(langs)))}
        lang_codes = np.array([codes[lang] for lang in langs], np.int64)
        return rank(keys, cosines, lexical, lang_codes, len(dense_keys), self.fusion, mode)

    def _lexical(self, conn, question, filters, where, params, dense_rows) -> list[tuple]:
        """(key, BM25, language, among the lexical top, cosine) for the lexical side's best
        ``n_cand`` and for the dense candidates (their BM25, for the fusion)."""
        q_terms = self._question_terms(question)
        if not q_terms:
            return []
        n_cand = int(params["n"])
        dense = np.array([int(r[0]) for r in dense_rows], np.int64)
        # With filters the whole ranking is read, to walk it down to what they allow.
        scored = (
            self._bm25(conn, q_terms)
            if filters != NO_FILTERS
            else self._bm25(conn, q_terms, top=n_cand, also=dense)
        )
        if scored is None:
            return []
        keys, scores, langs = scored
        # Best first, ties by key, as the reference ranks them.
        order = np.lexsort((keys, -scores))
        if filters != NO_FILTERS:
            top = self._allowed(conn, keys[order], where, params, n_cand)
        else:
            top = keys[order[:n_cand]]
        cosines = dict(
            conn.execute(
                sql.SQL(
                    "SELECT key, -(embedding <#> %(q)s::vector) FROM {} WHERE key = ANY(%(keys)s)"
                ).format(self._chunks),
                {"q": params["q"], "keys": top.tolist()},
            ).fetchall()
        )
        names = ["", *self._languages]
        # ``keys`` is sorted (np.unique): a passage's row is found by bisection.
        at = np.searchsorted(keys, top)
        out = [
            (k, float(scores[i]), names[langs[i]], True, cosines[k])
            for k, i in zip(top.tolist(), at.tolist(), strict=True)
        ]
        at = np.minimum(np.searchsorted(keys, dense), len(keys) - 1)
        found = keys[at] == dense
        out += [
            (k, float(scores[i]), names[langs[i]], False, None)
            for k, i in zip(dense[found].tolist(), at[found].tolist(), strict=True)
        ]
        return out

    def _question_terms(self, question: str) -> dict[str, list[tuple[int, float]]]:
        """term -> (language code, count) of the question analysed in each language."""
        q_terms: dict[str, list[tuple[int, float]]] = {}
        for code, language in enumerate(self._languages, start=1):
            counts: dict[str, int] = {}
            for term in analyze_cached(question, language):
                counts[term] = counts.get(term, 0) + 1
            for term, n in counts.items():
                q_terms.setdefault(term, []).append((code, float(n)))
        return q_terms

    def _bm25(
        self,
        conn,
        q_terms: dict[str, list[tuple[int, float]]],
        top: int | None = None,
        also: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(keys, BM25 scores, language codes), keys ascending, of the live passages
        sharing a term with the question (analysed in each language; a passage scores the
        terms of its own language).

        Without ``top``: every such passage. With it: only those the fused ranking needs,
        each with its exact score: the best ``top`` and those of ``also``. The terms are
        read rarest first (highest possible contribution first, MaxScore): once the
        contributions the unread terms could still add together fall below the ``top``-th
        best score so far, no passage outside the ones seen can reach the top, and the
        unread terms' postings are looked up for the passages that still can (and
        ``also``'s) through the primary key, instead of read whole. At 100k passages a
        common word has tens of thousands of postings; the rare words of a question
        decide its top.

        Postings come back as one row of packed arrays per term, read from the covering
        primary key (an index-only scan where the pages are all-visible), and are scored
        here: the database does no join or aggregation per posting."""
        if top is None:
            rows = self._postings_of(conn, sorted(q_terms))
            idf = {term: lucene_idf(df, self._passages) for term, df, *_ in rows}
            return _found(_summed(self._scored(rows, q_terms, idf)))
        dfs = doc_freqs(conn, self.generation, self.seq, sorted(q_terms))
        if not dfs:
            return None
        idf = {term: lucene_idf(df, self._passages) for term, df in dfs.items()}
        # tf / (tf + norm) < 1: a term adds at most its idf times its count in the question.
        bound = {term: idf[term] * max(n for _, n in q_terms[term]) for term in dfs}
        order = sorted(dfs, key=lambda term: (-bound[term], term))
        parts: list[_Part] = []
        read = 0
        while True:
            batch = [order[read]]
            size = dfs[order[read]]
            read += 1
            while read < len(order) and size + dfs[order[read]] <= _READ_BATCH:
                size += dfs[order[read]]
                batch.append(order[read])
                read += 1
            parts += self._scored(self._postings_of(conn, batch), q_terms, idf)
            keys, scores, langs = _summed(parts)
            if read == len(order):
                return _found((keys, scores, langs))
            unread = sum(bound[term] for term in order[read:])
            threshold = _kth(scores, top) * _SAFE
            if len(keys) >= top and unread < threshold:
                break
        # Passages whose score could still reach the top with every unread term, and
        # ``also``'s: their unread terms' postings, through the primary key.
        need = keys[scores + unread >= threshold]
        if also is not None:
            need = np.union1d(need, also)
        parts += self._scored(self._postings_of(conn, order[read:], need), q_terms, idf)
        keys, scores, langs = _summed(parts)
        keep = np.isin(keys, need)
        return _found((keys[keep], scores[keep], langs[keep]))

    def _postings_of(
        self, conn, terms: Sequence[str], keys: np.ndarray | None = None
    ) -> list[tuple]:
        """(term, postings, keys, tf, tokens, language codes) of these terms' live
        postings (of these passages only, with ``keys``), the arrays packed."""
        on_keys = sql.SQL("" if keys is None else "AND key = ANY(%(keys)s::int8[]) ")
        return conn.execute(
            sql.SQL(
                "SELECT term, count(*), string_agg(int8send(key), ''), "
                "string_agg(int4send(tf), ''), string_agg(int4send(tokens), ''), "
                "string_agg(int2send(coalesce(array_position(%(langs)s::text[], language), 0)"
                "::int2), '') FROM {} WHERE term = ANY(%(terms)s) {}AND added <= %(seq)s "
                "AND (removed IS NULL OR removed > %(seq)s) GROUP BY term"
            ).format(self._postings, on_keys),
            {
                "langs": self._languages,
                "terms": list(terms),
                "seq": self.seq,
                # An array literal: psycopg's list dumper took ~1 µs a key, and the
                # passages still in reach can be 10^5 on a large index.
                "keys": None if keys is None else "{" + ",".join(map(str, keys.tolist())) + "}",
            },
        ).fetchall()

    def _scored(
        self, rows: list[tuple], q_terms: dict[str, list[tuple[int, float]]], idf: dict
    ) -> list[_Part]:
        parts = []
        for term, _, k_buf, tf_buf, tok_buf, lang_buf in rows:
            keys = np.frombuffer(k_buf, ">i8").astype(np.int64)
            tf = np.frombuffer(tf_buf, ">i4").astype(np.float64)
            tokens = np.frombuffer(tok_buf, ">i4").astype(np.float64)
            lang = np.frombuffer(lang_buf, ">i2").astype(np.int64)
            part = tf / (K1 * ((1 - B) + B * tokens / self._avg_tokens) + tf)
            for code, n in q_terms[term]:
                mine = lang == code
                if mine.any():
                    parts.append((term, code, keys[mine], n * idf[term] * part[mine]))
        return parts

    def _allowed(self, conn, ranked: np.ndarray, where, params, n: int) -> np.ndarray:
        """The first ``n`` of ``ranked`` (keys, best first) that the filters allow, read in
        growing batches so that only the passages near the top are looked up."""
        query = sql.SQL("SELECT c.key FROM {} c WHERE c.key = ANY(%(batch)s) AND {}").format(
            self._chunks, where
        )
        kept: list[int] = []
        start, size = 0, max(4 * n, 256)
        while start < len(ranked) and len(kept) < n:
            batch = ranked[start : start + size].tolist()
            ok = {int(r[0]) for r in conn.execute(query, params | {"batch": batch})}
            kept += [k for k in batch if k in ok]
            start, size = start + size, size * 4
        return np.array(kept[:n], np.int64)

    def passages(self, keys: Sequence[int] | np.ndarray) -> list[Passage]:
        wanted = [int(k) for k in keys]
        if not wanted:
            return []
        query = sql.SQL(
            "SELECT key, chunk_id, article_id, ordinal, start_char, end_char, text, language, "
            "sentences, title, outlet, url, published, kind, sentence_vectors "
            "FROM {} WHERE key = ANY(%s)"
        ).format(self._chunks)
        with connection(self._pool) as conn:
            rows = {int(r[0]): r for r in conn.execute(query, [wanted])}
        missing = [k for k in wanted if k not in rows]
        if missing:
            raise IndexIntegrityError(
                f"index version {self.version} is no longer kept: its passages were collected"
            )
        out = []
        for key in wanted:
            (_, cid, aid, ordinal, start, end, text, lang, sents, title, outlet, url,
             published, kind, sv) = rows[key]  # fmt: skip
            spans = tuple(tuple(s) for s in sents)
            vectors = (
                None if sv is None else np.frombuffer(bytes(sv), np.float16).reshape(len(spans), -1)
            )
            chunk = Chunk(cid, aid, ordinal, start, end, text, lang, spans)
            out.append(Passage(chunk, title, outlet, url, published, kind, vectors))
        return out

    def close(self) -> None:
        """Nothing of its own: the pool belongs to the backend."""
