"""How ``akhbar serve`` runs the app under uvicorn: timeouts, limits, proxies.

uvicorn closes idle keep-alive connections, but waits without limit for the headers of a
request that never finishes arriving (or for the first byte of a connection that sends
none): a few hundred such sockets hold the server. The protocol below closes a connection
whose request headers take longer than ``Settings.header_timeout_s``, and answers
protocol-level garbage with the service's JSON error shape instead of plain text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from akhbar.settings import Settings


class HardenedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on each request's headers."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            # Part of a request line or headers, but not all: the clock keeps running
            # from the first byte (a client dripping one byte a second is not reset).
            self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request is keep-alive time, which uvicorn bounds itself.
        self._cancel_header_timer()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"error": {"code": "bad_request", "message": msg, "request_id": None}}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))  # type: ignore[arg-type]
        self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_class(settings: Settings) -> type[HardenedH11Protocol]:
    return type(
        "HardenedH11Protocol",
        (HardenedH11Protocol,),
        {"header_timeout_s": settings.header_timeout_s},
    )


def uvicorn_config(app: FastAPI, settings: Settings, host: str, port: int, **extra: Any) -> Any:
    """The uvicorn.Config that ``akhbar serve`` runs (tests start the same one)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(settings),
        # X-Forwarded-For is read by the app itself, and only from AKHBAR_TRUSTED_PROXIES
        # (service/app.py); uvicorn's default believes any loopback peer.
        proxy_headers=False,
        forwarded_allow_ips=[],
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        # A request line plus headers bigger than this is refused with a 400.
        h11_max_incomplete_event_size=64 * 1024,
        server_header=False,
        log_level="warning",
        **extra,
    )
