"""/docs, /redoc and /favicon.ico from files on this machine: they work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN; the files here come from the
fastapi-offline package (Swagger UI is Apache-2.0, ReDoc MIT), and the pages that load
them are in service/static/docs, with no inline script (the page's CSP).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from akhbar.service.routes.ops import STATIC_DIR

DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
}
_MAX_AGE = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs" / "swagger.html", media_type="text/html")


@router.get("/redoc")
def redoc() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs" / "redoc.html", media_type="text/html")


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> FileResponse:
    # A fixed list, never a path built from the request.
    if name not in _ASSETS:
        raise HTTPException(404, f"no documentation asset {name!r}")
    return FileResponse(DOCS_ASSETS / name, media_type=_ASSETS[name], headers=_MAX_AGE)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon", headers=_MAX_AGE)
