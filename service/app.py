"""The FastAPI application."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from service.config import Settings
from service.errors import install_error_handlers
from service.qa import QAEngine
from service.routes import articles, ask, health

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: QAEngine | None = None) -> FastAPI:
    """Build the app. Pass an engine to share one loaded model (tests, benchmarks)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = engine or QAEngine(settings)
        if app.state.engine.ready():
            s = app.state.engine.searcher()
            log.info("ready: index %s, %d chunks", s.version, s.count)
        else:
            log.warning("no index yet: /v1/ask answers 503 until `akhbar index` has run")
        yield
        if own:
            app.state.engine.close()

    app = FastAPI(
        title="Akhbar",
        version="0.1.0",
        description="Questions in French, Spanish or English over news; cited passages back.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.middleware("http")
    async def request_id(request: Request, call_next):  # noqa: ANN001, ANN202
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = rid
        response = await call_next(request)
        response.headers["x-request-id"] = rid
        return response

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(articles.router)
    return app
