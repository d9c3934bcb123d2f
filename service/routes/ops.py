"""GET /metrics (Prometheus) and the web page at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from akhbar.service.deps import EngineDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_K_META = '<meta name="akhbar-max-k" content="{}">'

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request, engine: EngineDep) -> Response:
    m = request.app.state.metrics
    # Index gauges are read at scrape time: the served version can change under us
    # (a rebuild job, or `akhbar index` in another process).
    if engine.ready():
        s = engine.searcher()
        m.set_index(s.version, s.count)
    else:
        m.set_index(None, 0)
    m.set_delta(engine.delta_status())
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def index_page(request: Request) -> HTMLResponse:
    # The page asks for up to ten passages; a server whose max_k is lower says so in the
    # page, so the page never sends a request the server refuses.
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    max_k = request.app.state.settings.max_k
    return HTMLResponse(page.replace(MAX_K_META.format(10), MAX_K_META.format(max_k), 1))
