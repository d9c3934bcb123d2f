"""Embedding cache keyed by (model, chunk text hash): a rebuild encodes only new text."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from akhbar.index.encoder import Encoder


def text_digest(text: str) -> str:
    """What a text is cached under."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        self.path = path
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

    def _get(self, table: str, key: str, value: str, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT {key}, {value} FROM {table} WHERE model = ? AND {key} IN ({marks})",
                    [self.model_key, *batch],
                )
                found.update(rows)
        return found

    def _put(self, table: str, rows: list[tuple[str, str, bytes]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._get("embeddings", "text_hash", "vector", hashes)
        vectors = {h: np.frombuffer(blob, dtype=np.float32) for h, blob in found.items()}
        return {h: v for h, v in vectors.items() if v.shape[0] == self.dimension}

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self._put(
            "embeddings",
            [(self.model_key, h, np.asarray(v, np.float32).tobytes()) for h, v in items],
        )

    def close(self) -> None:
        self._db.close()
