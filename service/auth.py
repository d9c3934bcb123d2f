"""Bearer-key checks for admin routes and, when configured, for /v1/ask."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="akhbar"'}


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
