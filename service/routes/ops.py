"""GET /metrics (Prometheus) and the web page at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from akhbar.service.deps import EngineDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

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
def index_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
