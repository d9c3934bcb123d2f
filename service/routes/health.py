"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from akhbar.service.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(engine: EngineDep) -> JSONResponse:
    if engine.ready():
        s = engine.searcher()
        return JSONResponse({"status": "ready", "index_version": s.version, "chunks": s.count})
    return JSONResponse({"status": "not ready", "index_version": None}, status_code=503)
