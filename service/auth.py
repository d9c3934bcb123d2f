"""Bearer-key checks for admin routes and, when configured, for /v1/ask."""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer
from pydantic import SecretStr

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="akhbar"'}

# Declares the scheme in the OpenAPI (Swagger's Authorize button); checks nothing itself:
# the functions below do, with this service's own error messages.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="AKHBAR_ADMIN_KEY for the admin routes; AKHBAR_ASK_KEY for /v1/ask when the "
    "server sets one.",
)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise HTTPException(
            401, "this route needs an Authorization: Bearer <key> header", headers=_CHALLENGE
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401,
            "malformed Authorization header: expected 'Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="akhbar", error="invalid_request"'},
        )
    return token


def _check(request: Request, key: SecretStr) -> None:
    token = _bearer_token(request)
    # Constant-time comparison on bytes: timing must not reveal how much of the key matched.
    if not hmac.compare_digest(token.encode(), key.get_secret_value().encode()):
        raise HTTPException(403, "the bearer key is not valid for this route")


def require_admin(request: Request) -> None:
    key: SecretStr | None = request.app.state.settings.admin_key
    if key is None or not key.get_secret_value():
        raise HTTPException(
            403, "admin routes are disabled: set AKHBAR_ADMIN_KEY on the server to enable them"
        )
    _check(request, key)


def require_ask_key(request: Request) -> None:
    key: SecretStr | None = request.app.state.settings.ask_key
    if key is not None and key.get_secret_value():
        _check(request, key)


# -- which key each request needs --------------------------------------------------------
# Checked by AccessMiddleware for every request, before any route reads the body; the route
# dependencies above check again where they are declared.

Access = Literal["public", "ask", "admin", "metrics"]

# What holds no corpus content: the page's shell and its assets (a browser cannot send a
# bearer key when it navigates; everything the page shows comes from /v1/ask), the docs'
# library files, and the probes an orchestrator calls without credentials.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")
_ADMIN_PREFIXES = ("/v1/index/", "/v1/jobs/")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def access_for(method: str, path: str) -> Access:
    """The key a request needs. Anything not named public needs at least the ask key, so a
    route added later is closed by default."""
    if path.startswith(_ADMIN_PREFIXES) or path in ("/v1/index", "/v1/jobs", "/v1/feeds"):
        return "admin"
    if (path == "/v1/articles" or path.startswith("/v1/articles/")) and (
        method.upper() not in _READ_METHODS
    ):
        return "admin"
    if path == "/metrics":
        return "metrics"
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return "public"
    return "ask"


def require_metrics_key(request: Request) -> None:
    settings = request.app.state.settings
    key: SecretStr | None = settings.metrics_key
    if key is None or not key.get_secret_value():
        key = settings.ask_key  # no key of its own: /metrics is as closed as the content
    if key is not None and key.get_secret_value():
        _check(request, key)


_REQUIRE = {"ask": require_ask_key, "admin": require_admin, "metrics": require_metrics_key}


def check_access(request: Request) -> None:
    """Raise the 401/403 ``HTTPException`` this request's access rule calls for, if any."""
    need = _REQUIRE.get(access_for(request.method, request.url.path))
    if need is not None:
        need(request)
