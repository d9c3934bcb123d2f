"""The lexical side: BM25 (bm25s) over per-language analysed chunks, for names and numbers."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np

from akhbar.index.analysis import analyze, analyze_cached


def _token_hashes(tokens: Iterable[str]) -> np.ndarray:
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
            for t in tokens
        ),
        dtype=np.uint64,
    )


class Vocabulary:
    """Token -> BM25 term id, as two sorted arrays: 64-bit token hashes and their ids.

    A Python dict of a million-chunk corpus's tokens (every name, number and reference)
    costs hundreds of MB resident; these arrays cost 16 bytes a token and are memory-mapped.
    A 64-bit collision among a few million tokens is a ~1e-7 event, and is checked at
    build time anyway."""

    HASHES, IDS = "akhbar_vocab_hashes.npy", "akhbar_vocab_ids.npy"

    def __init__(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        self._hashes, self._ids = hashes, ids

    @classmethod
    def from_dict(cls, vocab: dict[str, int]) -> Vocabulary:
        hashes = _token_hashes(vocab)
        order = np.argsort(hashes)
        hashes = hashes[order]
        if len(hashes) > 1 and bool((hashes[1:] == hashes[:-1]).any()):
            raise ValueError("two vocabulary tokens share a 64-bit hash")
        ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))[order]
        return cls(hashes, ids)

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """Term id of each token, -1 where the corpus has none (one vectorised pass)."""
        out = np.full(len(tokens), -1, np.int64)
        if not tokens or len(self._hashes) == 0:
            return out
        h = _token_hashes(tokens)
        pos = np.minimum(np.searchsorted(self._hashes, h), len(self._hashes) - 1)
        found = self._hashes[pos] == h
        out[found] = self._ids[pos[found]]
        return out

    def save(self, directory: Path) -> None:
        np.save(directory / self.HASHES, self._hashes)
        np.save(directory / self.IDS, self._ids)

    @classmethod
    def load(cls, directory: Path) -> Vocabulary:
        return cls(
            np.load(directory / cls.HASHES, mmap_mode="r"),
            np.load(directory / cls.IDS, mmap_mode="r"),
        )


def lucene_idf(df: int, n: int) -> float:
    """BM25's IDF as bm25s's "lucene" method computes it (always positive)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class Beside(Protocol):
    """Passages scored beside an index (the local backend's delta): their number and how
    many of them hold a token, which the index's IDF then counts too."""

    docs: int

    def doc_freq(self, token: str) -> int: ...


@dataclass(frozen=True)
class CorpusStats:
    """What BM25's IDF and length normalisation read from a whole index: a passage added
    beside it (the local backend's delta) is scored with these plus its own."""

    docs: int
    # Analysed tokens over all passages (average length = tokens / docs). None for a version
    # written without the count: the length is then estimated from the passages scored
    # beside it, which are cut to the same size.
    tokens: int | None
    k1: float
    b: float


class LexicalIndex:
    DIRNAME = "bm25"
    STATS = "akhbar_stats.json"

    def __init__(self, retriever: bm25s.BM25, vocab: Vocabulary, tokens: int | None) -> None:
        self._bm25 = retriever
        self._vocab = vocab
        if retriever.method != "lucene":
            raise ValueError(f"BM25 method {retriever.method!r}: only lucene is scored here")
        self.stats = CorpusStats(
            int(retriever.scores["num_docs"]), tokens, float(retriever.k1), float(retriever.b)
        )

    def doc_freqs(self, tokens: Sequence[str]) -> np.ndarray:
        """How many passages hold each token (0 for a token the index never saw)."""
        out = np.zeros(len(tokens), np.int64)
        ids = self._vocab.lookup(tokens)
        known = ids >= 0
        indptr = self._bm25.scores["indptr"]
        out[known] = indptr[ids[known] + 1] - indptr[ids[known]]
        return out

    @classmethod
    def build(cls, texts: Sequence[str], languages: Sequence[str]) -> LexicalIndex:
        tokens = [analyze(t, lang) for t, lang in zip(texts, languages, strict=True)]
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(tok, len(vocab)) for tok in doc] for doc in tokens]
        retriever = bm25s.BM25()
        # An empty vocabulary would make bm25s fail; one placeholder keeps the shape valid.
        if not vocab:
            vocab[""] = 0
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return cls(retriever, Vocabulary.from_dict(vocab), sum(len(t) for t in tokens))

    def scores_in_passage_language(
        self,
        query: str,
        row_languages: np.ndarray,
        languages: Sequence[str],
        mask: np.ndarray | None = None,
        beside: Beside | None = None,
    ) -> np.ndarray:
        """BM25 of every chunk (row order), the query analysed in each chunk's own language.

        ``row_languages`` holds per-row indices into ``languages``. Chunks were stemmed
        with their language's stemmer; stemming the question the same way lets names,
        numbers and cognates meet across languages.

        The sum runs over the query terms' postings in bm25s's precomputed score matrix,
        accumulated with one bincount: bm25s's own get_scores (np.add.at, per language
        over all rows) took 22 ms a question at a million chunks, this ~5. A term that
        several analyses of the question share (names and numbers usually) is read once,
        each posting weighted by how often its chunk's language produced the term."""
        matrix = self._bm25.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        # term id -> per language code, its count in that analysis of the question (a
        # repeated query term counts once per occurrence, as in bm25s)
        counts: dict[int, np.ndarray] = {}
        token_of: dict[int, str] = {}
        analysed = [
            (code, tok)
            for code, language in enumerate(languages)
            for tok in analyze_cached(query, language)
        ]
        term_ids = self._vocab.lookup([tok for _, tok in analysed]).tolist()  # one pass
        for (code, tok), term in zip(analysed, term_ids, strict=True):
            if term >= 0:
                token_of[term] = tok
                counts.setdefault(term, np.zeros(len(languages), np.float32))[code] += 1
        rows: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for term, per_language in counts.items():
            span = slice(int(indptr[term]), int(indptr[term + 1]))
            docs = indices[span]
            rows.append(docs)
            weight = data[span] * per_language[row_languages[docs]]
            if beside is not None:
                # The IDF of the index and the passages beside it together.
                df = span.stop - span.start
                n = self.stats.docs
                extra = beside.doc_freq(token_of[term])
                weight = weight * (lucene_idf(df + extra, n + beside.docs) / lucene_idf(df, n))
            weights.append(weight)
        n = len(row_languages)
        if not rows:
            return np.zeros(n, np.float32)
        out = np.bincount(
            np.concatenate(rows), weights=np.concatenate(weights), minlength=n
        ).astype(np.float32)
        if mask is not None:
            out[~mask] = 0.0
        return out

    def save(self, directory: Path) -> None:
        out = directory / self.DIRNAME
        self._bm25.save(str(out), show_progress=False)
        self._vocab.save(out)
        if self.stats.tokens is not None:
            (out / self.STATS).write_text(json.dumps({"tokens": self.stats.tokens}))

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Memory-mapped: the BM25 matrix is paged in as queries touch it."""
        d = directory / cls.DIRNAME
        # bm25s's own token dict is not loaded: ours (the arrays above) maps tokens to ids.
        retriever = bm25s.BM25.load(str(d), mmap=True, load_vocab=False, show_progress=False)
        stats = d / cls.STATS
        tokens = json.loads(stats.read_text())["tokens"] if stats.exists() else None
        return cls(retriever, Vocabulary.load(d), tokens)
