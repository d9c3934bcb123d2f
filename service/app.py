"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from akhbar.service.errors import install_error_handlers
from akhbar.service.jobs import JobManager
from akhbar.service.metrics import Metrics
from akhbar.service.middleware import (
    AccessMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    TimeoutMiddleware,
)
from akhbar.service.qa import QAEngine
from akhbar.service.ratelimit import TokenBucketLimiter
from akhbar.service.routes import admin, articles, ask, docs, feeds, health, ops, outlets, pages
from akhbar.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: QAEngine | None = None) -> FastAPI:
    """Build the app. Pass an engine to share one loaded model (tests, benchmarks)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        if own:
            app.state.engine = QAEngine(settings)
            app.state.jobs = jobs_for(app.state.engine)
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
        # Served from local files by routes/docs.py: FastAPI's own pages need a CDN.
        docs_url=None,
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.settings = settings

    def jobs_for(qa: QAEngine) -> JobManager:
        qa.add_index_listener(metrics)  # the engine's catch-ups and merges, counted
        return JobManager(qa.store, on_status=lambda s: metrics.rebuild_jobs.labels(s).inc())

    if engine is not None:
        # Usable before startup too: test clients that skip the lifespan (schemathesis).
        app.state.engine = engine
        app.state.jobs = jobs_for(engine)
    app.state.metrics = metrics
    app.state.ask_limiter = TokenBucketLimiter(settings.rate_limit_per_minute)

    # Added innermost first: the request context (id, access log, latency) wraps everything,
    # so even a 401, 413 or 504 made by the others is logged and counted. Access comes
    # before the body is read or timed.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_s)
    app.add_middleware(AccessMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, routes=app.router.routes)
    if settings.trusted_proxies:
        # Outermost: every later step (rate limit, access log) sees the real client. Only
        # these peers' X-Forwarded-For is read; anyone else's is ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(articles.router)
    app.include_router(admin.router)
    app.include_router(feeds.router)
    app.include_router(ops.router)
    app.include_router(outlets.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=ops.STATIC_DIR), name="static")
    return app
