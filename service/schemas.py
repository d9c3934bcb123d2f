"""Request and response models of the HTTP API (the contract clients rely on)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="The question, in French, Spanish or English.")
    k: int = Field(5, description="How many passages to return.")
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
