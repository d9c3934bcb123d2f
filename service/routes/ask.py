"""POST /v1/ask: the question-answering endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from index.searcher import Filters
from service.deps import EngineDep
from service.schemas import AskRequest, AskResponse, ErrorResponse

router = APIRouter(prefix="/v1", tags=["ask"])


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def ask(body: AskRequest, engine: EngineDep) -> AskResponse:
    filters = Filters(
        languages=tuple(body.languages or ()),
        outlets=tuple(body.outlets or ()),
        since=body.since,
        until=body.until,
    )
    # Encoding is CPU-bound: keep it off the event loop.
    return await run_in_threadpool(engine.ask, body.question, body.k, filters)
