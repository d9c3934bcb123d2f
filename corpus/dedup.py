"""Duplicate detection: exact (normalised text hash) and near (MinHash + LSH).

Headlines are too short for shingle similarity: two different headlines about the same
event share most word shingles' neighbourhood and would be merged. They are only ever
matched exactly (after normalisation).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SHINGLE_WORDS = 3
NEAR_THRESHOLD = 0.8
MIN_WORDS_FOR_NEAR = 25  # below this, shingle sets are too small for a stable estimate
# Stored signatures are only comparable under the same hashing scheme: pin it.
_SCHEME = "affine32"

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_for_hash(text: str) -> str:
    """Case, accents' composition, punctuation and spacing do not make a new article."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def content_hash(text: str, kind: str = "article") -> str:
    return hashlib.sha256(f"{kind}\x00{normalise_for_hash(text)}".encode()).hexdigest()


def shingles(text: str, k: int = SHINGLE_WORDS) -> set[str]:
    words = normalise_for_hash(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def minhash(text: str, kind: str = "article") -> MinHash | None:
    """Signature for near-duplicate search, or None where only exact matching applies."""
    if kind == "headline" or len(normalise_for_hash(text).split()) < MIN_WORDS_FOR_NEAR:
        return None
    mh = MinHash(num_perm=NUM_PERM, seed=1, scheme=_SCHEME)
    mh.update_batch([s.encode("utf-8") for s in shingles(text)])
    return mh


def signature_to_bytes(mh: MinHash) -> bytes:
    return np.asarray(mh.hashvalues, dtype=np.uint64).tobytes()


def signature_from_bytes(blob: bytes) -> MinHash:
    values = np.frombuffer(blob, dtype=np.uint64).copy()
    return MinHash(num_perm=len(values), seed=1, hashvalues=values, scheme=_SCHEME)


@dataclass
class NearDuplicateIndex:
    """LSH over canonical (non-duplicate) articles; verified by estimated Jaccard."""

    threshold: float = NEAR_THRESHOLD
    _lsh: MinHashLSH = field(init=False)
    _sigs: dict[str, MinHash] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)

    def add(self, key: str, mh: MinHash) -> None:
        if key in self._sigs:
            self.remove(key)
        self._lsh.insert(key, mh)
        self._sigs[key] = mh

    def remove(self, key: str) -> None:
        if key in self._sigs:
            self._lsh.remove(key)
            del self._sigs[key]

    def query(self, mh: MinHash, exclude: str | None = None) -> str | None:
        """The most similar indexed key at or above the threshold (ties: smallest key)."""
        best: tuple[float, str] | None = None
        for key in self._lsh.query(mh):
            if key == exclude:
                continue
            sim = self._sigs[key].jaccard(mh)
            if sim >= self.threshold and (
                best is None or sim > best[0] or (sim == best[0] and key < best[1])
            ):
                best = (sim, key)
        return best[1] if best else None

    def __len__(self) -> int:
        return len(self._sigs)
