"""The local backend's delta: passages written since the served version was built.

A version folder is immutable (FAISS, bm25s), and remaking one costs minutes at a million
passages; a new article must be answerable in seconds. So what changed since the build
goes into a small delta beside the version, searched exactly and fused with it::

    delta/<version>/seg-00000001.npz   # one write: its passages (text, vectors, BM25 counts)
    delta/<version>/delta.json         # which segments count, and the store's watermark
    .delta.lock                        # one delta writer at a time (flock)

A segment is written whole (temp file, fsync, rename) before ``delta.json`` names it, and
``delta.json`` is replaced the same way, so a writer killed at any point leaves the last
committed generation: a segment no manifest names is never read, and is overwritten by the
next writer. The watermark is the store's change sequence the delta has read up to; what
the store committed after it is indexed by the next catch-up, whoever runs it.

A later segment overrides an earlier one article by article, and every article a segment
names (written or deleted) hides that article's passages in the version below.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from akhbar.corpus.models import Article, Chunk
from akhbar.index.analysis import analyze, analyze_cached
from akhbar.index.base import BuildInProgressError, Filters, Passage
from akhbar.index.lexical import CorpusStats, lucene_idf

DIRNAME = "delta"
MANIFEST = "delta.json"
LOCK = ".delta.lock"
NO_DATE = -1


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[object], None]) -> None:
    """Write a file so that readers see the old one or the whole new one, even if this
    process is killed midway: a temp file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def delta_lock(root: Path, timeout_s: float = 120.0) -> Iterator[None]:
    """One delta writer (catch-up, upsert, delete, the switch of a merge) at a time, across
    processes. Held for an encoding of one batch at most, so waiting is the normal case."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("w") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildInProgressError(
                        f"the index delta in {root} stayed locked for {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class SegmentInfo:
    gen: int
    # The store's change sequence this segment brought the delta to; None for a segment
    # written by ``upsert``/``delete`` directly (not read from the store).
    watermark: int | None
    time: float
    chunks: int


@dataclass(frozen=True)
class DeltaState:
    """What ``delta.json`` says: the committed segments of one version's delta."""

    base: str
    watermark: int | None
    segments: tuple[SegmentInfo, ...] = ()

    @property
    def generation(self) -> int:
        return self.segments[-1].gen if self.segments else 0

    @property
    def chunks(self) -> int:
        """Passages written into the delta (an article written twice counts twice)."""
        return sum(s.chunks for s in self.segments)

    @property
    def oldest(self) -> float | None:
        return self.segments[0].time if self.segments else None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "base": self.base,
                "watermark": self.watermark,
                "segments": [[s.gen, s.watermark, s.time, s.chunks] for s in self.segments],
            }
        ).encode()


class DeltaFiles:
    """One version's delta folder."""

    def __init__(self, root: Path, base: str) -> None:
        self.root = root
        self.base = base
        self.dir = root / DIRNAME / base

    def state(self, base_watermark: int | None) -> DeltaState:
        """The committed state; an empty delta (at the version's own watermark) if none."""
        try:
            raw = json.loads((self.dir / MANIFEST).read_text())
        except FileNotFoundError:
            return DeltaState(self.base, base_watermark)
        return DeltaState(
            raw["base"],
            raw["watermark"],
            tuple(SegmentInfo(int(g), w, float(t), int(n)) for g, w, t, n in raw["segments"]),
        )

    def segment_path(self, gen: int) -> Path:
        return self.dir / f"seg-{gen:08d}.npz"

    def write_segment(self, gen: int, segment: Segment) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fsync_dir(self.dir.parent)
        write_atomic(self.segment_path(gen), segment.save)

    def commit(self, state: DeltaState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fsync_dir(self.dir.parent)
        write_atomic(self.dir / MANIFEST, lambda fh: fh.write(state.to_json()))  # type: ignore[attr-defined]


@dataclass
class Segment:
    """One delta write: the passages of the articles it (re)wrote, and the ids it removed."""

    written: list[str]  # article ids whose passages this segment replaces
    deleted: list[str]  # article ids removed
    passages: list[Passage]
    vectors: np.ndarray  # (n, d) float32
    # BM25 counts of the passages: a local vocabulary and (passage, term, count) triples
    vocab: list[str] = field(default_factory=list)
    lex_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    lex_term: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    lex_tf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @classmethod
    def make(
        cls,
        articles: dict[str, Article],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentences: Sequence[np.ndarray] | None,
        deleted: Sequence[str] = (),
    ) -> Segment:
        passages = []
        vocab: dict[str, int] = {}
        docs: list[int] = []
        terms: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(chunks), np.int32)
        for i, c in enumerate(chunks):
            a = articles[c.article_id]
            svec = None if sentences is None else np.asarray(sentences[i], np.float16)
            passages.append(Passage(c, a.title, a.outlet, a.url, a.published, a.kind, svec))
            # The same analysis as the version's BM25 (LexicalIndex.build).
            tokens = analyze(c.text, c.language)
            lengths[i] = len(tokens)
            counts: dict[int, int] = {}
            for tok in tokens:
                tid = vocab.setdefault(tok, len(vocab))
                counts[tid] = counts.get(tid, 0) + 1
            docs.extend([i] * len(counts))
            terms.extend(counts)
            tfs.extend(counts.values())
        return cls(
            written=list(articles),
            deleted=[d for d in dict.fromkeys(deleted) if d not in articles],
            passages=passages,
            vectors=np.ascontiguousarray(vectors, np.float32),
            vocab=list(vocab),
            lex_doc=np.array(docs, np.int32),
            lex_term=np.array(terms, np.int32),
            lex_tf=np.array(tfs, np.float32),
            lengths=lengths,
        )

    def save(self, fh: object) -> None:
        meta = {
            "written": self.written,
            "deleted": self.deleted,
            "vocab": self.vocab,
            "passages": [
                {
                    "id": p.chunk.id,
                    "article_id": p.chunk.article_id,
                    "ordinal": p.chunk.ordinal,
                    "start": p.chunk.start,
                    "end": p.chunk.end,
                    "text": p.chunk.text,
                    "language": p.chunk.language,
                    "sentences": p.chunk.sentences,
                    "title": p.title,
                    "outlet": p.outlet,
                    "url": p.url,
                    "published": p.published.isoformat() if p.published else None,
                    "kind": p.kind,
                }
                for p in self.passages
            ],
        }
        svecs = [p.sentence_vectors for p in self.passages]
        dim = self.vectors.shape[1] if self.vectors.ndim == 2 else 0
        np.savez(
            fh,  # type: ignore[arg-type]
            meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), np.uint8),
            vectors=self.vectors,
            svec=np.concatenate([s for s in svecs if s is not None])
            if any(s is not None for s in svecs)
            else np.zeros((0, dim), np.float16),
            svec_n=np.array([-1 if s is None else len(s) for s in svecs], np.int32),
            lex_doc=self.lex_doc,
            lex_term=self.lex_term,
            lex_tf=self.lex_tf,
            lengths=self.lengths,
        )

    @classmethod
    def load(cls, path: Path) -> Segment:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}  # read now: the file may be pruned later
        meta = json.loads(arrays["meta"].tobytes().decode())
        passages = []
        offset = 0
        for p, n in zip(meta["passages"], arrays["svec_n"].tolist(), strict=True):
            svec = None
            if n >= 0:
                svec = arrays["svec"][offset : offset + n]
                offset += n
            chunk = Chunk(
                id=p["id"],
                article_id=p["article_id"],
                ordinal=p["ordinal"],
                start=p["start"],
                end=p["end"],
                text=p["text"],
                language=p["language"],
                sentences=tuple(tuple(s) for s in p["sentences"]),
            )
            published = date.fromisoformat(p["published"]) if p["published"] else None
            passages.append(
                Passage(chunk, p["title"], p["outlet"], p["url"], published, p["kind"], svec)
            )
        return cls(
            written=meta["written"],
            deleted=meta["deleted"],
            passages=passages,
            vectors=arrays["vectors"],
            vocab=meta["vocab"],
            lex_doc=arrays["lex_doc"],
            lex_term=arrays["lex_term"],
            lex_tf=arrays["lex_tf"],
            lengths=arrays["lengths"],
        )

    @property
    def touched(self) -> list[str]:
        return [*self.written, *self.deleted]


class DeltaLexical:
    """BM25 over the delta's passages, scored as if they were in the version's index: the
    IDF counts the version's passages and the delta's together, the average length too.

    (The version's own passages keep the scores their build gave them; a full rebuild
    would shift those by the delta's share of the corpus, which the merge threshold keeps
    small. Passages hidden by the delta still count in the version's statistics.)"""

    def __init__(self, segments: Sequence[tuple[Segment, np.ndarray]], lang_codes: np.ndarray):
        vocab: dict[str, int] = {}
        docs, terms, tfs, lengths = [], [], [], []
        base = 0
        for seg, rows in segments:
            if len(rows) == 0:
                continue
            # Segment row -> row in the view (or -1 where the passage is no longer live).
            new_row = np.full(len(seg.passages), -1, np.int64)
            new_row[rows] = np.arange(base, base + len(rows))
            local_to_global = np.array(
                [vocab.setdefault(t, len(vocab)) for t in seg.vocab], np.int64
            )
            keep = new_row[seg.lex_doc] >= 0
            docs.append(new_row[seg.lex_doc[keep]])
            terms.append(local_to_global[seg.lex_term[keep]] if len(seg.vocab) else seg.lex_term)
            tfs.append(seg.lex_tf[keep])
            lengths.append(seg.lengths[rows])
            base += len(rows)
        self.vocab = vocab
        self.count = base
        self.lang_codes = lang_codes
        self.lengths = np.concatenate(lengths).astype(np.float32) if lengths else np.zeros(0)
        self.tokens = int(self.lengths.sum())
        if docs:
            d, t, f = np.concatenate(docs), np.concatenate(terms), np.concatenate(tfs)
            order = np.argsort(t, kind="stable")
            self.postings, self.tf = d[order], f[order]
            self.indptr = np.searchsorted(t[order], np.arange(len(vocab) + 1))
        else:
            self.postings, self.tf = np.zeros(0, np.int64), np.zeros(0, np.float32)
            self.indptr = np.zeros(1, np.int64)

    @property
    def docs(self) -> int:  # what LexicalIndex's IDF counts beside its own passages
        return self.count

    def doc_freq(self, token: str) -> int:
        tid = self.vocab.get(token)
        return 0 if tid is None else int(self.indptr[tid + 1] - self.indptr[tid])

    def scores(
        self,
        question: str,
        languages: Sequence[str],
        stats: CorpusStats,
        version_doc_freqs: Callable[[Sequence[str]], np.ndarray],
    ) -> np.ndarray:
        """BM25 of every delta passage, the question analysed in each passage's language
        (``languages[code]``), as ``LexicalIndex.scores_in_passage_language`` scores the
        version's."""
        out = np.zeros(self.count, np.float32)
        if self.count == 0:
            return out
        present = np.unique(self.lang_codes)
        counts: dict[str, np.ndarray] = {}
        for code in present.tolist():
            for tok in analyze_cached(question, languages[code]):
                if tok in self.vocab:
                    counts.setdefault(tok, np.zeros(len(languages), np.float32))[code] += 1
        if not counts:
            return out
        toks = list(counts)
        ids = np.array([self.vocab[t] for t in toks], np.int64)
        n = stats.docs + self.count
        df = version_doc_freqs(toks) + (self.indptr[ids + 1] - self.indptr[ids])
        tokens = self.tokens + (stats.tokens if stats.tokens is not None else 0)
        docs_counted = n if stats.tokens is not None else self.count
        avgdl = max(tokens / max(docs_counted, 1), 1e-9)
        rows, weights = [], []
        for tok, tid, d in zip(toks, ids.tolist(), df.tolist(), strict=True):
            span = slice(int(self.indptr[tid]), int(self.indptr[tid + 1]))
            docs, tf = self.postings[span], self.tf[span]
            idf = lucene_idf(d, n)
            norm = stats.k1 * (1 - stats.b + stats.b * self.lengths[docs] / avgdl)
            rows.append(docs)
            weights.append(idf * tf / (tf + norm) * counts[tok][self.lang_codes[docs]])
        return np.bincount(
            np.concatenate(rows), weights=np.concatenate(weights), minlength=self.count
        ).astype(np.float32)


class DeltaView:
    """The live passages of a delta at one generation, ready to search beside its version.

    ``languages`` extends the version's language list with the delta's new ones, so one
    code means one language on both sides (fusion normalises BM25 per language)."""

    def __init__(
        self,
        state: DeltaState,
        segments: Sequence[Segment],
        version_languages: Sequence[str],
        hidden_rows: np.ndarray,
    ) -> None:
        self.state = state
        # The last segment to name an article holds its passages.
        owner: dict[str, int] = {}
        for i, seg in enumerate(segments):
            for a in seg.touched:
                owner[a] = i
        live: list[tuple[Segment, np.ndarray]] = []
        for i, seg in enumerate(segments):
            rows = np.array(
                [r for r, p in enumerate(seg.passages) if owner[p.chunk.article_id] == i],
                np.int64,
            )
            live.append((seg, rows))
        self.passages: list[Passage] = [seg.passages[r] for seg, rows in live for r in rows]
        self.hidden_rows = hidden_rows  # the version's rows of every article the delta names
        dim = segments[0].vectors.shape[1] if segments else 0
        self.vectors = (
            np.ascontiguousarray(np.concatenate([seg.vectors[rows] for seg, rows in live]))
            if self.passages
            else np.zeros((0, dim), np.float32)
        )
        self.languages = list(version_languages)
        for p in self.passages:
            if p.chunk.language not in self.languages:
                self.languages.append(p.chunk.language)
        self.lang_codes = np.array(
            [self.languages.index(p.chunk.language) for p in self.passages], np.int64
        )
        self.outlets = [(p.outlet or "").casefold() for p in self.passages]
        self.published = np.array(
            [p.published.toordinal() if p.published else NO_DATE for p in self.passages],
            np.int64,
        )
        self.lexical = DeltaLexical(live, self.lang_codes)
        self._blas: ThreadpoolController | None = None

    @property
    def count(self) -> int:
        return len(self.passages)

    def cosines(self, query_vector: np.ndarray) -> np.ndarray:
        """Every delta passage's cosine to the question: one matrix-vector product, on one
        BLAS thread (as the version's exact index does: more gain little on a product this
        size and spin against the other threads; measured 17 ms vs 2 ms at 10k passages on
        two loaded cores)."""
        if self._blas is None:
            self._blas = ThreadpoolController().select(user_api="blas")
        with self._blas.limit(limits=1):
            return self.vectors @ query_vector.astype(np.float32)

    def mask(self, filters: Filters) -> np.ndarray:
        """Which delta passages pass the filters (as ``ChunkTable.mask`` reads them)."""
        mask = np.ones(self.count, bool)
        if filters.languages:
            mask &= np.isin(self.lang_codes, [self.languages.index(x) for x in filters.languages
                                              if x in self.languages])  # fmt: skip
        if filters.outlets:
            wanted = {o.casefold() for o in filters.outlets}
            mask &= np.array([o in wanted for o in self.outlets], bool)
        if filters.since:
            mask &= self.published >= filters.since.toordinal()
        if filters.until:
            mask &= (self.published != NO_DATE) & (self.published <= filters.until.toordinal())
        return mask
