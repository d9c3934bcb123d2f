"""Per-version chunk metadata: SQLite for the rows we return, numpy arrays for filtering."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from akhbar.corpus.models import Article, Chunk
from akhbar.index.base import Passage

NO_DATE = -1


class ChunkTable:
    FILENAME = "chunks.sqlite3"
    ARRAYS = "filters.npz"

    def __init__(self, directory: Path) -> None:
        self._db = sqlite3.connect(
            f"file:{directory / self.FILENAME}?mode=ro", uri=True, check_same_thread=False
        )
        arrays = np.load(directory / self.ARRAYS, allow_pickle=False)
        self.int_ids: np.ndarray = arrays["int_ids"]
        self.lang_codes: np.ndarray = arrays["lang_codes"]
        self.outlet_codes: np.ndarray = arrays["outlet_codes"]
        self.published: np.ndarray = arrays["published"]
        meta = json.loads((directory / "filters.json").read_text())
        self.languages: list[str] = meta["languages"]
        self.outlets: list[str] = meta["outlets"]
        # A sorted copy and binary search rather than a dict: at a million chunks a
        # Python dict of ints costs ~125 MB, these two arrays 16 MB.
        self._order = np.argsort(self.int_ids, kind="stable")
        self._sorted_ids = self.int_ids[self._order]

    def __len__(self) -> int:
        return len(self.int_ids)

    def rows_of(self, int_ids: np.ndarray) -> np.ndarray:
        """The rows of these FAISS ids, -1 for an id not in the table (one binary search
        for them all: a question maps a hundred ids)."""
        int_ids = np.asarray(int_ids, np.int64)
        if len(self._sorted_ids) == 0:
            return np.full(len(int_ids), -1, np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, int_ids), len(self._sorted_ids) - 1)
        found = self._sorted_ids[at] == int_ids
        return np.where(found, self._order[at], -1)

    def rows_of_articles(self, article_ids: Sequence[str]) -> np.ndarray:
        """The rows of these articles' chunks, ascending."""
        ids = list(article_ids)
        rows: list[int] = []
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            cur = self._db.execute(f"SELECT row FROM chunks WHERE article_id IN ({marks})", batch)
            rows.extend(r[0] for r in cur)
        return np.array(sorted(rows), np.int64)

    def get_rows(self, rows: Sequence[int] | np.ndarray) -> list[Passage]:
        if len(rows) == 0:
            return []
        marks = ",".join("?" * len(rows))
        cur = self._db.execute(
            "SELECT row, id, article_id, ordinal, start, end_, text, language, sentences,"
            " title, outlet, url, published, kind, svec FROM chunks"
            f" WHERE row IN ({marks})",
            [int(r) for r in rows],
        )
        by_row = {}
        for r in cur:
            chunk = Chunk(
                id=r[1],
                article_id=r[2],
                ordinal=r[3],
                start=r[4],
                end=r[5],
                text=r[6],
                language=r[7],
                sentences=tuple(tuple(s) for s in json.loads(r[8])),
            )
            pub = date.fromisoformat(r[12]) if r[12] else None
            svec = None
            if r[14] is not None and chunk.sentences:
                svec = np.frombuffer(r[14], np.float16).reshape(len(chunk.sentences), -1)
            by_row[r[0]] = Passage(chunk, r[9], r[10], r[11], pub, r[13], svec)
        return [by_row[int(r)] for r in rows if int(r) in by_row]

    def mask(
        self,
        *,
        languages: Sequence[str] | None = None,
        outlets: Sequence[str] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> np.ndarray | None:
        """Boolean row mask for the filters, or None when nothing is filtered."""
        mask = np.ones(len(self.int_ids), bool)
        filtered = False
        if languages:
            codes = [self.languages.index(x) for x in languages if x in self.languages]
            mask &= np.isin(self.lang_codes, codes)
            filtered = True
        if outlets:
            wanted = {o.casefold() for o in outlets}
            codes = [i for i, o in enumerate(self.outlets) if o.casefold() in wanted]
            mask &= np.isin(self.outlet_codes, codes)
            filtered = True
        if since:
            mask &= self.published >= since.toordinal()
            filtered = True
        if until:
            mask &= (self.published != NO_DATE) & (self.published <= until.toordinal())
            filtered = True
        return mask if filtered else None

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def write(
        directory: Path,
        chunks: Sequence[Chunk],
        articles: dict[str, Article],
        int_ids: np.ndarray,
        sentence_vectors: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        db = sqlite3.connect(directory / ChunkTable.FILENAME)
        db.execute(
            "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,"
            " int_id INTEGER UNIQUE NOT NULL, article_id TEXT NOT NULL, ordinal INTEGER,"
            " start INTEGER, end_ INTEGER, text TEXT, language TEXT, sentences TEXT,"
            " title TEXT, outlet TEXT, url TEXT, published TEXT, kind TEXT, svec BLOB)"
        )
        db.execute("CREATE INDEX chunks_article ON chunks(article_id)")
        lang_idx: dict[str, int] = {}
        outlet_idx: dict[str, int] = {}
        lang_codes = np.zeros(len(chunks), np.uint8)
        outlet_codes = np.full(len(chunks), -1, np.int32)
        published = np.full(len(chunks), NO_DATE, np.int32)
        rows = []
        for r, c in enumerate(chunks):
            a = articles[c.article_id]
            lang_codes[r] = lang_idx.setdefault(c.language, len(lang_idx))
            if a.outlet:
                outlet_codes[r] = outlet_idx.setdefault(a.outlet, len(outlet_idx))
            if a.published:
                published[r] = a.published.toordinal()
            rows.append(
                (
                    r,
                    c.id,
                    int(int_ids[r]),
                    c.article_id,
                    c.ordinal,
                    c.start,
                    c.end,
                    c.text,
                    c.language,
                    json.dumps(c.sentences),
                    a.title,
                    a.outlet,
                    a.url,
                    a.published.isoformat() if a.published else None,
                    a.kind,
                    None
                    if sentence_vectors is None or sentence_vectors[r] is None
                    else np.asarray(sentence_vectors[r], np.float16).tobytes(),
                )
            )
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.commit()
        db.close()
        np.savez(
            directory / ChunkTable.ARRAYS,
            int_ids=int_ids,
            lang_codes=lang_codes,
            outlet_codes=outlet_codes,
            published=published,
        )
        (directory / "filters.json").write_text(
            json.dumps(
                {"languages": list(lang_idx), "outlets": list(outlet_idx)}, ensure_ascii=False
            )
        )
