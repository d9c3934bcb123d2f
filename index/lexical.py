"""The lexical side: BM25 (bm25s) over per-language analysed chunks, for names and numbers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from index.analysis import analyze, analyze_cached


class LexicalIndex:
    DIRNAME = "bm25"

    def __init__(self, retriever: bm25s.BM25, vocab: dict[str, int]) -> None:
        self._bm25 = retriever
        self._vocab = vocab

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
        return cls(retriever, vocab)

    def scores(self, query: str, language: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every chunk (row order) for the query, analysed in its language."""
        tokens = [t for t in analyze_cached(query, language) if t in self._vocab]
        n = int(self._bm25.scores["num_docs"])
        if not tokens:
            return np.zeros(n, np.float32)
        ids = [self._vocab[t] for t in tokens]
        scores = self._bm25.get_scores(ids)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        return np.asarray(scores, np.float32)

    def scores_in_passage_language(
        self,
        query: str,
        row_languages: np.ndarray,
        languages: Sequence[str],
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """BM25 of every chunk, the query analysed in each chunk's own language.

        ``row_languages`` holds per-row indices into ``languages``. Chunks were stemmed
        with their language's stemmer; stemming the question the same way lets names,
        numbers and cognates meet across languages."""
        out = np.zeros(len(row_languages), np.float32)
        for code, language in enumerate(languages):
            rows = row_languages == code
            if rows.any():
                out[rows] = self.scores(query, language)[rows]
        if mask is not None:
            out = np.where(mask, out, 0.0)
        return out

    def save(self, directory: Path) -> None:
        out = directory / self.DIRNAME
        self._bm25.save(str(out), show_progress=False)
        (out / "akhbar_vocab.json").write_text(json.dumps(self._vocab, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> LexicalIndex:
        d = directory / cls.DIRNAME
        retriever = bm25s.BM25.load(str(d), mmap=mmap, show_progress=False)
        vocab = json.loads((d / "akhbar_vocab.json").read_text())
        return cls(retriever, vocab)
