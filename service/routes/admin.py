"""Admin routes (bearer AKHBAR_ADMIN_KEY): ingest, delete, rebuild the index, follow jobs."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response, Security
from starlette.concurrency import run_in_threadpool

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import IngestReport, RawItem
from akhbar.corpus.sources import iter_sources
from akhbar.index.base import BuildReport, Progress
from akhbar.pipeline import fetcher, run_index
from akhbar.service.auth import bearer_scheme, require_admin
from akhbar.service.deps import EngineDep, SettingsDep
from akhbar.service.jobs import Job, JobManager, JobRunningError
from akhbar.service.qa import QAEngine
from akhbar.service.schemas import (
    ArticleIn,
    DeletedOut,
    ErrorResponse,
    IngestOut,
    IngestRequest,
    JobOut,
    JobProgress,
    Rejected,
)

log = logging.getLogger(__name__)

_AUTH_ERRORS: dict[int | str, dict] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}
router = APIRouter(
    prefix="/v1",
    tags=["admin"],
    dependencies=[Security(bearer_scheme), Depends(require_admin)],
)


def _raw_item(article: ArticleIn) -> RawItem:
    url = str(article.url) if article.url else None
    return RawItem(
        title=article.title,
        body=article.text,
        source=url or "api",
        outlet=article.outlet,
        url=url,
        published=article.published,
        declared_language=article.language,
    )


def _ingest(engine: QAEngine, settings: SettingsDep, body: IngestRequest) -> IngestReport:
    items = [_raw_item(a) for a in body.articles]
    report = ingest(engine.store, items)
    if body.urls:
        # Only http(s) URLs reach here (HttpUrl): a client can never make us read local files.
        sources = iter_sources(
            [str(u) for u in body.urls],
            fetcher=fetcher(settings),
            max_bytes=settings.fetch_max_bytes,
        )
        report.add(ingest(engine.store, sources))
    try:
        # Answerable when this returns (local backend: the delta), not after a rebuild.
        engine.refresh()
    except Exception:
        # Stored all the same: the engine's follower retries, `akhbar index` rebuilds.
        log.exception("ingested articles could not be indexed yet")
    return report


@router.post(
    "/articles",
    response_model=IngestOut,
    responses={**_AUTH_ERRORS, 422: {"model": ErrorResponse}},
)
async def post_articles(
    body: Annotated[list[ArticleIn] | IngestRequest, Body()],
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
) -> IngestOut:
    """Ingest articles (a JSON list, or ``{"articles": [...], "urls": [...]}``).

    With the local backend they are answerable when this returns (the index's delta, no
    rebuild)."""
    if isinstance(body, list):
        if len(body) > 1000:
            raise HTTPException(422, "at most 1000 articles per request")
        body = IngestRequest(articles=body)
    report = await run_in_threadpool(_ingest, engine, settings, body)
    request.app.state.metrics.observe_ingest(report)
    return IngestOut(
        stored=report.stored,
        duplicate=report.duplicate,
        unchanged=report.unchanged,
        rejected=report.rejected,
        total=report.total,
        reasons=[Rejected(source=s, reason=r) for s, r in report.reasons],
    )


@router.delete(
    "/articles/{article_id}",
    response_model=DeletedOut,
    responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse}},
)
async def delete_article(article_id: str, engine: EngineDep) -> DeletedOut:
    """Delete an article; it stops appearing in answers at once, before any rebuild."""
    # Exclude first: a question racing the deletion must not see it either.
    engine.forget_article(article_id)
    if not await run_in_threadpool(engine.store.delete_article, article_id):
        raise HTTPException(404, f"no article with id {article_id!r}")
    return DeletedOut(id=article_id, deleted=True)


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=JobProgress(stage=job.stage, done=job.done, total=job.total),
        result=job.result,
        error=job.error,
        created=job.created,
        started=job.started,
        finished=job.finished,
    )


@router.post(
    "/index/rebuild",
    response_model=JobOut,
    status_code=202,
    responses={**_AUTH_ERRORS, 409: {"model": ErrorResponse}},
)
def rebuild(
    request: Request, response: Response, engine: EngineDep, settings: SettingsDep
) -> JobOut:
    """Start rebuilding the index in the background; follow it at ``/v1/jobs/{id}``.

    One rebuild at a time: while one runs, this answers 409 with its job in ``Location``."""
    jobs: JobManager = request.app.state.jobs

    def build(progress: Progress) -> BuildReport:
        report = run_index(settings, engine.encoder, progress=progress)
        # Load the new version now, so the next question does not pay for it.
        engine.ready()
        return report

    try:
        job = jobs.start_rebuild(build)
    except JobRunningError as exc:
        raise HTTPException(409, str(exc), headers={"Location": f"/v1/jobs/{exc.job.id}"}) from exc
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse}},
)
def get_job(job_id: str, request: Request) -> JobOut:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return job_out(job)
