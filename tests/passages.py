"""Hand-made passages with hand-made sentence vectors, for answer-layer unit tests."""

from __future__ import annotations

import numpy as np

from akhbar.corpus.models import Chunk
from akhbar.index.base import Passage

DIM = 8


def unit(*values: float) -> np.ndarray:
    """A unit vector of DIM dimensions starting with ``values``."""
    v = np.zeros(DIM, np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def passage(
    text: str,
    sentences: list[tuple[int, int]],
    vectors: np.ndarray | None,
    *,
    language: str = "es",
    title: str = "",
) -> Passage:
    """One passage (a whole one-chunk article) with its sentence spans and vectors."""
    chunk = Chunk(
        id=f"c-{text[:12]}",
        article_id=f"a-{text[:12]}",
        ordinal=0,
        start=0,
        end=len(text),
        text=text,
        language=language,
        sentences=tuple(sentences),
    )
    svec = None if vectors is None else vectors.astype(np.float16)
    return Passage(chunk, title, None, None, None, "article", svec)
