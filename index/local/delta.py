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

import faiss
import numpy as np

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


class _Column:
    """An append-only array shared by successive views of one delta: a view of ``n`` rows
    reads ``[:n]``, so the next view appends after it in place (amortised O(new rows), the
    capacity doubling) and the older view still reads what it read. A view extended twice
    (an older generation opened after a newer one) gets a copy instead."""

    def __init__(self, dtype: np.dtype | type, width: int = 0) -> None:
        shape = (16, width) if width else (16,)
        self.buf = np.zeros(shape, dtype)
        self.used = 0

    def append(self, n: int, rows: np.ndarray) -> tuple[_Column, np.ndarray]:
        """A column holding this one's first ``n`` rows then ``rows``, and its filled part."""
        col = self
        if n != self.used:  # another view already appended after row n: branch off
            col = _Column(self.buf.dtype, self.buf.shape[1] if self.buf.ndim == 2 else 0)
            col.buf = self.buf[: max(n, 16)].copy()
            col.used = n
        end = n + len(rows)
        if end > len(col.buf):
            grown = np.zeros((max(end, 2 * len(col.buf)), *col.buf.shape[1:]), col.buf.dtype)
            grown[:n] = col.buf[:n]
            col.buf = grown
        col.buf[n:end] = rows
        col.used = end
        return col, col.buf[:end]


# Postings appended since the last full term-sorted rebuild form a second, smaller sorted
# run (re-sorted with each generation, a few milliseconds); they are sorted in with the rest
# (one argsort, every write's share of it small) when they pass this many or an eighth of
# the first run.
_TAIL_MIN = 8192


def _spans(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which span, position) of every position in the spans ``[starts[i], ends[i])``, in
    one gather: span i's j-th position is starts[i] + j."""
    sizes = ends - starts
    pos = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum())
    return np.repeat(np.arange(len(starts)), sizes), pos


class DeltaLexical:
    """BM25 over the delta's live passages, scored as if they were in the version's index:
    the IDF counts the version's passages and the delta's together, the average length too.

    (The version's own passages keep the scores their build gave them; a full rebuild
    would shift those by the delta's share of the corpus, which the merge threshold keeps
    small. Passages hidden by the delta still count in the version's statistics.)

    Rows are every passage the delta ever wrote, ``alive`` says which still count: a new
    generation appends its segment's postings (term ids in a vocabulary shared along the
    delta) and clears the rows it overrides, so it costs what it adds. Postings are kept
    in two term-sorted runs: up to ``sorted_upto`` (indexed by term id), and the tail past
    it (found by binary search)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.alive = np.zeros(0, bool)
        self.lang_codes = np.zeros(0, np.int64)
        self.present: list[int] = []
        self.lengths = np.zeros(0, np.int64)
        self.count = 0  # live passages
        self.tokens = 0  # analysed tokens over the live passages
        self._doc, self._term, self._tf = _Column(np.int64), _Column(np.int64), _Column(np.float32)
        self._len = _Column(np.int64)
        self._df: dict[str, int] = {}
        self.doc = self._doc.buf[:0]
        self.term = self._term.buf[:0]
        self.tf = self._tf.buf[:0]
        self.sorted_upto = 0
        self.order_doc = np.zeros(0, np.int64)
        self.order_tf = np.zeros(0, np.float32)
        self.indptr = np.zeros(1, np.int64)
        self.tail_term = self.tail_doc = np.zeros(0, np.int64)
        self.tail_tf = np.zeros(0, np.float32)

    def extended(
        self,
        segment: Segment,
        first_row: int,
        alive: np.ndarray,
        lang_codes: np.ndarray,
    ) -> DeltaLexical:
        """This delta with ``segment``'s passages as rows ``first_row...``; ``alive`` and
        ``lang_codes`` cover every row, the new ones included."""
        out = DeltaLexical.__new__(DeltaLexical)
        # Shared along the delta and only ever added to (never iterated by a reader): an
        # id, once given, keeps its token, and an older view finds no posting for a newer one.
        out.vocab = self.vocab
        local_to_global = np.array(
            [self.vocab.setdefault(t, len(self.vocab)) for t in segment.vocab], np.int64
        )
        n_post = len(self.doc)
        out._doc, out.doc = self._doc.append(n_post, segment.lex_doc.astype(np.int64) + first_row)
        terms = local_to_global[segment.lex_term] if len(segment.vocab) else segment.lex_term
        out._term, out.term = self._term.append(n_post, terms.astype(np.int64))
        out._tf, out.tf = self._tf.append(n_post, segment.lex_tf.astype(np.float32))
        out._len, out.lengths = self._len.append(first_row, segment.lengths.astype(np.int64))
        out._df = {}
        out.alive, out.lang_codes = alive, lang_codes
        out.present = np.unique(lang_codes[alive]).tolist()  # the languages to analyse in
        out.count = int(alive.sum())
        out.tokens = int(out.lengths[alive].sum())
        out.sorted_upto, out.order_doc, out.order_tf, out.indptr = (
            self.sorted_upto, self.order_doc, self.order_tf, self.indptr,
        )  # fmt: skip
        if len(out.doc) - out.sorted_upto > max(_TAIL_MIN, out.sorted_upto // 8):
            out._sort()
        out._sort_tail()
        return out

    def _sort(self) -> None:
        order = np.argsort(self.term, kind="stable")
        self.order_doc, self.order_tf = self.doc[order], self.tf[order]
        self.indptr = np.searchsorted(self.term[order], np.arange(len(self.vocab) + 1))
        self.sorted_upto = len(self.doc)

    def _sort_tail(self) -> None:
        start = self.sorted_upto
        order = np.argsort(self.term[start:], kind="stable")
        self.tail_term = self.term[start:][order]
        self.tail_doc, self.tail_tf = self.doc[start:][order], self.tf[start:][order]

    @property
    def docs(self) -> int:  # what LexicalIndex's IDF counts beside its own passages
        return self.count

    def _postings(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(which of ``ids``, row, tf) of every live posting of the term ids ``ids``."""
        in_run = np.flatnonzero(ids < len(self.indptr) - 1)
        which, pos = _spans(self.indptr[ids[in_run]], self.indptr[ids[in_run] + 1])
        which_t, pos_t = _spans(
            np.searchsorted(self.tail_term, ids, "left"),
            np.searchsorted(self.tail_term, ids, "right"),
        )
        w = np.concatenate([in_run[which], which_t])
        d = np.concatenate([self.order_doc[pos], self.tail_doc[pos_t]])
        f = np.concatenate([self.order_tf[pos], self.tail_tf[pos_t]])
        live = self.alive[d]
        return w[live], d[live], f[live]

    def doc_freq(self, token: str) -> int:
        # Asked once per question term by the version's scoring: remembered per view (a
        # view never changes; the next generation starts afresh).
        df = self._df.get(token)
        if df is None:
            tid = self.vocab.get(token)
            df = 0 if tid is None else len(self._postings(np.array([tid], np.int64))[0])
            if len(self._df) > 4096:
                self._df.clear()
            self._df[token] = df
        return df

    def scores(
        self,
        question: str,
        languages: Sequence[str],
        stats: CorpusStats,
        version_doc_freqs: Callable[[Sequence[str]], np.ndarray],
    ) -> np.ndarray:
        """BM25 of every delta row (0 for one no longer live), the question analysed in
        each passage's language (``languages[code]``), as
        ``LexicalIndex.scores_in_passage_language`` scores the version's."""
        rows = len(self.alive)
        out = np.zeros(rows, np.float32)
        if self.count == 0:
            return out
        counts: dict[str, np.ndarray] = {}
        for code in self.present:
            for tok in analyze_cached(question, languages[code]):
                if tok in self.vocab:
                    counts.setdefault(tok, np.zeros(len(languages), np.float32))[code] += 1
        if not counts:
            return out
        toks = list(counts)
        ids = np.array([self.vocab[t] for t in toks], np.int64)
        which, docs, tf = self._postings(ids)
        if len(docs) == 0:
            return out
        n = stats.docs + self.count
        df = version_doc_freqs(toks) + np.bincount(which, minlength=len(ids))
        tokens = self.tokens + (stats.tokens if stats.tokens is not None else 0)
        docs_counted = n if stats.tokens is not None else self.count
        avgdl = max(tokens / max(docs_counted, 1), 1e-9)
        idf = np.array([lucene_idf(int(d), n) for d in df.tolist()])
        per_language = np.stack([counts[t] for t in toks])
        norm = stats.k1 * (1 - stats.b + stats.b * self.lengths[docs] / avgdl)
        weights = idf[which] * tf / (tf + norm) * per_language[which, self.lang_codes[docs]]
        return np.bincount(docs, weights=weights, minlength=rows).astype(np.float32)


# Below this many rows a question reads the fp32 vectors directly.
_FP16_MIN_ROWS = 1024


def _fp16_scan(vectors: np.ndarray) -> faiss.Index | None:
    """An fp16 copy of the rows' vectors for choosing candidates (rebuilt per generation:
    a few milliseconds at the merge threshold, off the question path)."""
    if len(vectors) < _FP16_MIN_ROWS:
        return None
    index = faiss.IndexScalarQuantizer(
        vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.add(np.ascontiguousarray(vectors, np.float32))
    return index


class DeltaView:
    """The passages of a delta at one generation, ready to search beside its version.

    Rows are every passage the delta's segments wrote, in order; ``alive`` marks those
    still live (the last segment to name an article holds its passages), and keys past the
    version's rows are these rows. ``extended`` makes the next generation's view from this
    one, at the cost of the new segment alone.

    ``languages`` extends the version's language list with the delta's new ones, so one
    code means one language on both sides (fusion normalises BM25 per language)."""

    def __init__(self, state: DeltaState, version_languages: Sequence[str], dim: int) -> None:
        """An empty view (no segment yet) of the version's delta."""
        self.state = state
        self.languages = list(version_languages)
        self.hidden_rows = np.zeros(0, np.int64)  # the version's rows of articles named
        self.alive = np.zeros(0, bool)
        self.rows_of: dict[str, np.ndarray] = {}  # live article -> its rows
        self._passages: list[Passage] = []
        self._vec, self.vectors = _Column(np.float32, dim), np.zeros((0, dim), np.float32)
        self._lang, self.lang_codes = _Column(np.int64), np.zeros(0, np.int64)
        self._pub, self.published = _Column(np.int64), np.zeros(0, np.int64)
        self._outlet, self.outlet_codes = _Column(np.int64), np.zeros(0, np.int64)
        self.outlet_ids: dict[str, int] = {}  # casefolded outlet -> code
        self.lexical = DeltaLexical()
        self.count = 0
        self._fp16: faiss.Index | None = None  # the rows' vectors in fp16, to choose from

    @classmethod
    def build(
        cls,
        state: DeltaState,
        segments: Sequence[tuple[Segment, np.ndarray]],
        version_languages: Sequence[str],
        dim: int,
    ) -> DeltaView:
        """The view of ``segments`` (each with the version rows of the articles it names)."""
        view = cls(DeltaState(state.base, state.watermark), version_languages, dim)
        return view.extended(state, segments)

    def extended(
        self, state: DeltaState, segments: Sequence[tuple[Segment, np.ndarray]]
    ) -> DeltaView:
        """This view with ``segments`` (the generations after this one's) applied."""
        view = self
        for seg, hidden in segments:
            view = view._with(seg, hidden)
        if view is self:
            view = self._copy()
        else:
            view._fp16 = _fp16_scan(view.vectors)
        view.state = state
        return view

    def _copy(self) -> DeltaView:
        out = DeltaView.__new__(DeltaView)
        out.__dict__.update(self.__dict__)
        return out

    def _with(self, seg: Segment, hidden: np.ndarray) -> DeltaView:
        out = self._copy()
        n, k = len(self.alive), len(seg.passages)
        alive = np.concatenate([self.alive, np.ones(k, bool)])
        out.rows_of = dict(self.rows_of)
        for article in seg.touched:
            old = out.rows_of.pop(article, None)
            if old is not None:
                alive[old] = False
        for article in seg.written:
            out.rows_of[article] = np.zeros(0, np.int64)
        by_article: dict[str, list[int]] = {}
        for r, p in enumerate(seg.passages):
            by_article.setdefault(p.chunk.article_id, []).append(n + r)
        for article, rows in by_article.items():
            out.rows_of[article] = np.array(rows, np.int64)
        out.alive = alive
        out.count = int(alive.sum())
        out.hidden_rows = np.union1d(self.hidden_rows, hidden) if len(hidden) else self.hidden_rows
        out._passages = self._passages if len(self._passages) == n else self._passages[:n]
        out._passages.extend(seg.passages)  # rows past n: no older view reads them
        out.languages = list(self.languages)
        for p in seg.passages:
            if p.chunk.language not in out.languages:
                out.languages.append(p.chunk.language)
        codes = np.array([out.languages.index(p.chunk.language) for p in seg.passages], np.int64)
        names = [(p.outlet or "").casefold() for p in seg.passages]
        if any(o not in self.outlet_ids for o in names):
            # A new dict: an older view's filter may be iterating this one.
            out.outlet_ids = dict(self.outlet_ids)
            for o in names:
                out.outlet_ids.setdefault(o, len(out.outlet_ids))
        outlets = [out.outlet_ids[o] for o in names]
        published = [p.published.toordinal() if p.published else NO_DATE for p in seg.passages]
        out._vec, out.vectors = self._vec.append(n, seg.vectors.reshape(k, self.vectors.shape[1]))
        out._lang, out.lang_codes = self._lang.append(n, codes)
        out._pub, out.published = self._pub.append(n, np.array(published, np.int64))
        out._outlet, out.outlet_codes = self._outlet.append(n, np.array(outlets, np.int64))
        out.lexical = self.lexical.extended(seg, n, alive, out.lang_codes)
        return out

    @property
    def rows(self) -> int:
        """Rows, live or not: a key past the version's is one of these."""
        return len(self.alive)

    def passage(self, row: int) -> Passage:
        return self._passages[row]

    def live_passages(self) -> list[Passage]:
        return [self._passages[r] for r in np.flatnonzero(self.alive).tolist()]

    def live_vectors(self) -> np.ndarray:
        return self.vectors[self.alive]

    def nearest(
        self, query_vector: np.ndarray, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows of ``mask`` nearest the question, and their exact cosines.

        A question reads the whole delta, usually from memory rather than cache (the
        version's search has just evicted it): fp32 vectors are 15 MB at 10k passages,
        1.5 ms a question. So the rows are chosen on an fp16 copy (half the bytes; a
        cosine moves by ~1e-4) from twice as many as asked, and rescored from fp32."""
        q = np.ascontiguousarray(query_vector, np.float32)
        allowed = int(mask.sum())
        if self._fp16 is None or allowed <= 2 * k:
            rows = np.flatnonzero(mask)
        else:
            params = None  # every row allowed: no selector to consult per row
            if allowed < len(mask):
                selector = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
                params = faiss.SearchParameters(sel=selector)
            _, found = self._fp16.search(q.reshape(1, -1), 2 * k, params=params)
            rows = found[0][found[0] >= 0]
        cosines = self.cosines(rows, q)
        if len(rows) > k:
            best = np.argpartition(-cosines, k - 1)[:k]
            rows, cosines = rows[best], cosines[best]
        return rows, cosines

    def cosines(self, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
        """Exact cosines of these rows (numpy's own loop: a few hundred rows, where a BLAS
        call would wake threads that spin against the question encoder's)."""
        return np.einsum("ij,j->i", self.vectors[rows], query_vector.astype(np.float32))

    def mask(self, filters: Filters) -> np.ndarray:
        """Which delta rows are live and pass the filters (as ``ChunkTable.mask`` reads
        them)."""
        mask = self.alive.copy()
        if filters.languages:
            codes = [self.languages.index(x) for x in filters.languages if x in self.languages]
            mask &= np.isin(self.lang_codes, codes)
        if filters.outlets:
            wanted = {o.casefold() for o in filters.outlets}
            codes = [c for o, c in self.outlet_ids.items() if o in wanted]
            mask &= np.isin(self.outlet_codes, codes)
        if filters.since:
            mask &= self.published >= filters.since.toordinal()
        if filters.until:
            mask &= (self.published != NO_DATE) & (self.published <= filters.until.toordinal())
        return mask
