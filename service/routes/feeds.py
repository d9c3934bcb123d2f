"""Admin routes for feed subscriptions (bearer AKHBAR_ADMIN_KEY): list, subscribe, remove.

The poller itself runs in `akhbar watch` or `akhbar serve --watch`; these routes only
change what it polls (it reads the subscriptions from the store at every tick).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from akhbar.corpus.poller import (
    DEFAULT_EVERY,
    MAX_OUTLET_CHARS,
    MAX_URL_CHARS,
    FeedError,
    FeedExists,
    format_every,
    subscribe,
)
from akhbar.corpus.store import FeedRecord
from akhbar.corpus.valid_text import is_valid_text
from akhbar.pipeline import fetcher
from akhbar.service.auth import bearer_scheme, require_admin
from akhbar.service.deps import EngineDep, SettingsDep
from akhbar.service.errors import error_response
from akhbar.service.schemas import ErrorResponse

_AUTH_ERRORS: dict[int | str, dict] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}
router = APIRouter(
    prefix="/v1",
    tags=["admin"],
    dependencies=[Security(bearer_scheme), Depends(require_admin)],
)


class FeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL_CHARS, description="The RSS or Atom feed's http(s) URL.")
    outlet: str | None = Field(
        None,
        max_length=MAX_OUTLET_CHARS,
        description="The outlet its items are filed under; default: the feed's title.",
    )
    every: str = Field(
        DEFAULT_EVERY,
        max_length=20,
        description="Poll interval: a number and a unit (s, m, h, d), from 1m to 7d. A "
        "feed's own <ttl>, if longer, is honoured.",
    )


class FeedOut(BaseModel):
    url: str
    outlet: str | None
    every: str
    next_poll: datetime
    last_poll: datetime | None
    last_outcome: str | None = Field(
        description="ok, not_modified, error, timeout (no answer in time) or invalid (not a "
        "readable feed)."
    )
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int = Field(description="Consecutive failed polls (the backoff's exponent).")
    last_new_items: int = Field(description="New or changed articles the last poll stored.")
    total_new_items: int


class FeedsOut(BaseModel):
    feeds: list[FeedOut]


class FeedDeletedOut(BaseModel):
    url: str
    deleted: bool


def _time(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def feed_out(feed: FeedRecord) -> FeedOut:
    return FeedOut(
        url=feed.url,
        outlet=feed.outlet,
        every=format_every(feed.interval_s),
        next_poll=datetime.fromtimestamp(feed.next_poll, UTC),
        last_poll=_time(feed.last_poll),
        last_outcome=feed.last_outcome,
        last_success=_time(feed.last_success),
        last_error=feed.last_error,
        last_error_at=_time(feed.last_error_at),
        failures=feed.failures,
        last_new_items=feed.last_new_items,
        total_new_items=feed.total_new_items,
    )


@router.get("/feeds", response_model=FeedsOut, responses=_AUTH_ERRORS)
async def list_feeds(engine: EngineDep) -> FeedsOut:
    """Feed subscriptions, the next due first, with how their last polls went."""
    feeds = await run_in_threadpool(engine.store.list_feeds)
    return FeedsOut(feeds=[feed_out(f) for f in feeds])


@router.post(
    "/feeds",
    response_model=FeedOut,
    status_code=201,
    responses={**_AUTH_ERRORS, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
async def add_feed(
    body: FeedIn, request: Request, engine: EngineDep, settings: SettingsDep
) -> FeedOut | JSONResponse:
    """Subscribe to a feed; it is due at once. A private or loopback address is refused
    unless the server sets AKHBAR_ALLOW_PRIVATE_URLS."""
    try:
        feed = await run_in_threadpool(
            subscribe,
            engine.store,
            fetcher(settings),
            body.url,
            outlet=body.outlet,
            every=body.every,
        )
    except FeedExists as exc:
        raise HTTPException(409, str(exc)) from exc
    except FeedError as exc:
        return error_response(request, 422, "invalid_request", str(exc))
    return feed_out(feed)


@router.delete(
    "/feeds",
    response_model=FeedDeletedOut,
    responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse}},
)
async def remove_feed(
    url: Annotated[str, Query(max_length=MAX_URL_CHARS, description="The feed's URL.")],
    engine: EngineDep,
) -> FeedDeletedOut:
    """Unsubscribe. The articles it brought stay in the store."""
    if not is_valid_text(url):
        raise HTTPException(404, "no feed subscription for that URL (it holds invalid text)")
    if not await run_in_threadpool(engine.store.remove_feed, url.strip()):
        raise HTTPException(404, f"no feed subscription for {url!r}")
    return FeedDeletedOut(url=url.strip(), deleted=True)
