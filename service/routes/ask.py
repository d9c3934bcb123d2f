"""POST /v1/ask: the question-answering endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from akhbar.index.base import Filters
from akhbar.service.auth import require_ask_key
from akhbar.service.deps import EngineDep
from akhbar.service.ratelimit import rate_limit_ask
from akhbar.service.schemas import AskRequest, AskResponse, ErrorResponse, ask_response

router = APIRouter(prefix="/v1", tags=["ask"])


@router.post(
    "/ask",
    response_model=AskResponse,
    # Auth before the rate limit: a wrong key must not use up a legitimate client's tokens.
    dependencies=[Depends(require_ask_key), Depends(rate_limit_ask)],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
        504: {"model": ErrorResponse},
    },
    # The key is asked for only where the server sets AKHBAR_ASK_KEY: optional here.
    openapi_extra={"security": [{}, {"bearer": []}]},
)
async def ask(body: AskRequest, request: Request, engine: EngineDep) -> AskResponse:
    max_k = request.app.state.settings.max_k
    if body.k > max_k:
        # The bound is a setting, not in the schema; said the way the schema's own k >= 1 is.
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("body", "k"),
                    "msg": f"Input should be less than or equal to {max_k}",
                    "input": body.k,
                }
            ]
        )
    filters = Filters(
        languages=tuple(body.languages or ()),
        outlets=tuple(body.outlets or ()),
        since=body.since,
        until=body.until,
    )
    # Encoding is CPU-bound: keep it off the event loop.
    response = ask_response(await run_in_threadpool(engine.ask, body.question, body.k, filters))
    request.app.state.metrics.observe_answer(response)
    return response
