"""One JSON shape for every error: ``{"error": {"code", "message", "request_id"}}``.

Clients get a message they can act on; stack traces stay in the server log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from akhbar.corpus.store.errors import StoreUnavailableError
from akhbar.index.base import (
    BuildInProgressError,
    IndexIntegrityError,
    IndexUnavailableError,
    NoIndexError,
)
from akhbar.service.qa import QuestionError

log = logging.getLogger(__name__)


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict | None = None
) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    body = {"error": {"code": code, "message": message, "request_id": rid}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            # loc is ("body", character offset); ctx has the parser's own words.
            reason = (err.get("ctx") or {}).get("error", "malformed")
            where = err.get("loc", ())[-1:]
            at = f" at character {where[0]}" if where and isinstance(where[0], int) else ""
            return f"the request body is not valid JSON: {reason}{at}"
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = err.get("msg", "invalid")
        if err.get("type") == "value_error" and (ctx := err.get("ctx")) and "error" in ctx:
            msg = str(ctx["error"])  # our own validators' sentences, without "Value error, "
        parts.append(f"{loc or 'body'}: {msg}")
    return "; ".join(parts) or "invalid request"


def _validation_code(exc: RequestValidationError) -> str:
    """One code per kind of mistake: the JSON itself, the question, any other field."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "invalid_json"
    if errors and all(tuple(e.get("loc", ()))[:2] == ("body", "question") for e in errors):
        return "invalid_question"  # the same code as the engine's own question checks
    return "invalid_request"


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path: one path can be served by several
    routes (GET and DELETE /v1/articles/{id} live in different routers). Asked of the
    routes themselves, method by method, so that included routers are searched too."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 422, _validation_code(exc), _validation_message(exc))

    @app.exception_handler(QuestionError)
    async def _question(request: Request, exc: QuestionError) -> JSONResponse:
        return error_response(request, 422, "invalid_question", str(exc))

    @app.exception_handler(NoIndexError)
    async def _no_index(request: Request, exc: NoIndexError) -> JSONResponse:
        return error_response(request, 503, "no_index", str(exc))

    @app.exception_handler(IndexIntegrityError)
    async def _integrity(request: Request, exc: IndexIntegrityError) -> JSONResponse:
        log.error("index integrity: %s", exc)
        return error_response(request, 503, "index_unusable", str(exc))

    @app.exception_handler(IndexUnavailableError)
    async def _unavailable(request: Request, exc: IndexUnavailableError) -> JSONResponse:
        log.warning("index unavailable: %s", exc)
        return error_response(
            request, 503, "index_unavailable", str(exc), headers={"Retry-After": "5"}
        )

    @app.exception_handler(StoreUnavailableError)
    async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return error_response(
            request, 503, "store_unavailable", str(exc), headers={"Retry-After": "5"}
        )

    @app.exception_handler(BuildInProgressError)
    async def _busy(request: Request, exc: BuildInProgressError) -> JSONResponse:
        return error_response(request, 409, "build_in_progress", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            413: "too_large",
            429: "rate_limited",
            504: "timeout",
        }.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and (allow := _allowed_methods(request)):
            headers = {**(headers or {}), "Allow": allow}
        return error_response(request, exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, "internal_error", "internal error; the server log has the details"
        )
