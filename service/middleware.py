"""ASGI middleware: request ids, access log and latency metrics, body cap, request timeout.

Pure ASGI (not BaseHTTPMiddleware) so that the body cap can count bytes as they stream in
and the timeout can answer while a worker thread is still busy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from fastapi import HTTPException, Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akhbar.service.auth import check_access
from akhbar.service.logs import ACCESS_LOGGER
from akhbar.service.metrics import Metrics

access_log = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id(scope: Scope) -> str | None:
    return scope.get("state", {}).get("request_id")


async def send_json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    """The errors.py JSON shape, for answers made before or outside the FastAPI app."""
    body = json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}
    ).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Outermost: gives each request an id, then logs and measures it once it is answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's own list: routes added later are seen too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        # A client-chosen id is kept only if it is short and plain: it ends up in logs.
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - t0
            template = self._template(scope)
            self.metrics.observe_request(template, scope["method"], status, elapsed)
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "request_id": rid,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "client": client[0] if client else None,
                    }
                )
            )

    def _template(self, scope: Scope) -> str:
        # The route template, never the raw path: ids in paths would explode label counts.
        route = scope.get("route")
        if route is None:  # FastAPI records only its own APIRoutes; match the others here
            route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return getattr(route, "path", None) or "unmatched"


class AccessMiddleware:
    """Checks the bearer key a request needs (service.auth's rules) before the app reads
    its body: a client without the key learns nothing else, not even that its JSON is bad."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check_access(Request(scope))
            except HTTPException as exc:
                code = "unauthorized" if exc.status_code == 401 else "forbidden"
                await send_json_error(
                    send, exc.status_code, code, str(exc.detail), _request_id(scope), exc.headers
                )
                return
        await self.app(scope, receive, send)


# Only the service's own files: the page and the API docs load nothing from elsewhere and
# carry no inline script. Swagger UI and ReDoc set styles from script at run time, so the
# two docs pages allow inline styles (never inline script).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_DOCS_PAGES = frozenset({"/docs", "/redoc"})
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Security headers on every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"] in _DOCS_PAGES else PAGE_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [*_SECURITY_HEADERS, (b"content-security-policy", csp)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: on Content-Length first, then while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over the {self.max_bytes}-byte limit"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await send_json_error(
                    send, 400, "bad_request", "invalid Content-Length", _request_id(scope)
                )
                return
            if too_big:
                await send_json_error(send, 413, "too_large", message, _request_id(scope))
                return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises an HTTPException from body reading: our JSON handler.
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, counted_receive, send)


class TimeoutMiddleware:
    """504 when the app has not started answering within ``seconds``.

    The work runs in its own task; on timeout the client gets its answer at once and the
    task is cancelled (a worker thread already running finishes in the background, and
    anything it sends is dropped).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False
        timed_out = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done:
            task.result()  # re-raise what the app raised
            return
        if started:
            # Too late for a clean error: let the response finish.
            await task
            return
        timed_out = True
        task.cancel()
        task.add_done_callback(_log_late_failure)
        await send_json_error(
            send,
            504,
            "timeout",
            f"the request took longer than {self.seconds:g} s",
            _request_id(scope),
        )


def _log_late_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("request failed after its timeout: %r", task.exception())
