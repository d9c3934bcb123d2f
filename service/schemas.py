"""Request and response models of the HTTP API (the contract clients rely on)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="The question, in French, Spanish or English.")
    k: int = Field(5, ge=1, description="How many passages to return (at most the server's max_k).")
    languages: list[str] | None = Field(None, description="Only passages in these languages.")
    outlets: list[str] | None = Field(None, description="Only passages from these outlets.")
    since: date | None = Field(None, description="Only articles published on or after.")
    until: date | None = Field(None, description="Only articles published on or before.")


class Citation(BaseModel):
    article_id: str
    title: str
    outlet: str | None
    url: str | None
    published: date | None
    start: int = Field(..., description="Offset of the passage in the article text.")
    end: int


class Highlight(BaseModel):
    start: int = Field(..., description="Offset of the answer sentence in the passage text.")
    end: int


class Passage(BaseModel):
    id: str
    text: str
    score: float
    language: str
    citation: Citation
    highlight: Highlight


class AskResponse(BaseModel):
    question: str
    question_language: str
    answerable: bool
    passages: list[Passage]
    index_version: str
    took_ms: float


class ArticleOut(BaseModel):
    id: str
    title: str
    text: str
    language: str
    outlet: str | None
    url: str | None
    published: date | None
    author: str | None = None
    duplicate_of: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- admin ---------------------------------------------------------------------------------


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., max_length=1000)
    text: str = Field(..., description="Plain text; paragraphs separated by blank lines.")
    url: HttpUrl | None = None
    outlet: str | None = Field(None, max_length=200)
    published: date | None = None
    language: Literal["fr", "es", "en"] | None = Field(
        None, description="Declared language, used when detection is unsure."
    )


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleIn] = Field(default_factory=list, max_length=1000)
    urls: list[HttpUrl] = Field(
        default_factory=list, max_length=50, description="Pages or feeds to fetch and ingest."
    )


class Rejected(BaseModel):
    source: str
    reason: str


class IngestOut(BaseModel):
    stored: int
    duplicate: int
    unchanged: int
    rejected: int
    total: int
    reasons: list[Rejected]


class DeletedOut(BaseModel):
    id: str
    deleted: bool


class JobProgress(BaseModel):
    stage: str | None
    done: int
    total: int


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "interrupted"]
    progress: JobProgress
    result: dict | None = Field(
        None, description="On success: version, articles, chunks, encoded, reused, seconds."
    )
    error: str | None = None
    created: float
    started: float | None
    finished: float | None
