"""GET /v1/outlets: the outlets the corpus holds, for the page's outlet filter."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from akhbar.service.deps import EngineDep
from akhbar.service.schemas import OutletOut

router = APIRouter(prefix="/v1", tags=["articles"])


@router.get("/outlets", response_model=list[OutletOut])
async def list_outlets(engine: EngineDep) -> list[OutletOut]:
    """Outlets with their number of stored articles (duplicates not counted), most first.

    Articles without an outlet are not listed. Names match the `outlets` filter of
    /v1/ask, which ignores case."""
    counts = await run_in_threadpool(engine.store.outlet_counts)
    return [OutletOut(name=name, articles=n) for name, n in counts]
