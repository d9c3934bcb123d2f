"""Request and response models of the HTTP API (the contract clients rely on)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, model_validator

from akhbar.corpus.language import SERVED
from akhbar.index.answers import Answer, Hit


def _no_number_as_date(value: Any) -> Any:
    # Pydantic reads a number as seconds since 1970: `"published": 0` would silently
    # become 1970-01-01. A date in JSON is a string.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("give the date as a string, YYYY-MM-DD, not a number")
    return value


def _casefold_language(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


IsoDate = Annotated[date, BeforeValidator(_no_number_as_date)]
# "FR" and " fr" mean fr; anything else is refused with the list of served languages.
ServedLanguage = Annotated[Literal[SERVED], BeforeValidator(_casefold_language)]  # type: ignore[valid-type]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        ...,
        min_length=1,
        # Whitespace alone is refused too (the same check as the CLI's); the pattern tells
        # schema readers so.
        json_schema_extra={"pattern": r"\S"},
        description="The question, in French, Spanish or English.",
    )
    k: int = Field(5, ge=1, description="How many passages to return (at most the server's max_k).")
    languages: list[ServedLanguage] | None = Field(
        None, description="Only passages in these languages (case-insensitive)."
    )
    outlets: list[str] | None = Field(
        None, description="Only passages from these outlets (case-insensitive; see /v1/outlets)."
    )
    since: IsoDate | None = Field(None, description="Only articles published on or after.")
    until: IsoDate | None = Field(None, description="Only articles published on or before.")

    @model_validator(mode="after")
    def _dates_in_order(self) -> AskRequest:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self


class Citation(BaseModel):
    article_id: str
    title: str
    outlet: str | None
    url: str | None
    published: date | None
    kind: Literal["article", "headline"] = Field(
        "article",
        description="headline: a title alone, as a feed or an aggregator page lists it.",
    )
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
    answers: bool = Field(
        False,
        description="Whether this passage stands out enough to be put forward as an answer "
        "(the abstention rule applied to it alone); answerable is true when any does.",
    )
    citation: Citation
    highlight: Highlight


class AskResponse(BaseModel):
    question: str
    question_language: str
    answerable: bool
    passages: list[Passage]
    index_version: str
    took_ms: float


def ask_response(answer: Answer) -> AskResponse:
    """The API's view of an answer (the CLI's --json prints the same)."""
    return AskResponse(
        question=answer.question,
        question_language=answer.question_language,
        answerable=answer.answerable,
        passages=[_passage(h) for h in answer.hits],
        index_version=answer.index_version,
        took_ms=answer.took_ms,
    )


def _passage(hit: Hit) -> Passage:
    p, c = hit.passage, hit.passage.chunk
    return Passage(
        id=c.id,
        text=c.text,
        score=round(hit.score, 5),
        language=c.language,
        answers=hit.answers,
        citation=Citation(
            article_id=c.article_id,
            title=p.title,
            outlet=p.outlet,
            url=p.url,
            published=p.published,
            kind=p.kind,
            start=c.start,
            end=c.end,
        ),
        highlight=Highlight(start=hit.highlight[0], end=hit.highlight[1]),
    )


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


class OutletOut(BaseModel):
    name: str
    articles: int = Field(..., description="Stored articles from this outlet (no duplicates).")


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
    published: IsoDate | None = None
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
