"""Embedding cache keyed by (model, chunk text hash): a rebuild encodes only new text."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from index.encoder import Encoder


class EmbeddingCache:
    def __init__(self, path: Path, model_key: str, dimension: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, text_hash TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, text_hash)) WITHOUT ROWID"
        )
        self._lock = threading.Lock()
        self.model_key = model_key
        self.dimension = dimension

    @classmethod
    def for_encoder(cls, path: Path, encoder: Encoder) -> EmbeddingCache:
        """The cache an encoder's vectors live under: keyed by model and precision, since
        bf16 and fp32 vectors differ slightly and must never mix in one index."""
        return cls(
            path,
            model_key=f"{encoder.name}|{getattr(encoder, 'precision', '')}",
            dimension=encoder.dimension,
        )

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                batch = list(hashes[start : start + 500])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT text_hash, vector FROM embeddings WHERE model = ? "
                    f"AND text_hash IN ({marks})",
                    [self.model_key, *batch],
                )
                for h, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == self.dimension:
                        found[h] = vec
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(self.model_key, h, np.asarray(v, np.float32).tobytes()) for h, v in items]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
