"""Background index rebuilds: one at a time, in a thread, observable by id.

Every change of a job (queued, each progress step, its end) is written to the store, so a
job's outcome outlives the process: after a crash the job that was running reads
``interrupted`` with the progress it had reached. A new rebuild then resumes from the
embedding cache, which keeps every batch encoded before the crash.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Literal

from akhbar.corpus.store import ArticleStore, JobRecord
from akhbar.index.base import BuildReport, Progress

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed", "interrupted"]
BuildFn = Callable[[Progress], BuildReport]
Job = JobRecord

_UNFINISHED = ("queued", "running")
INTERRUPTED_MESSAGE = (
    "the server stopped while this job was running; start a new rebuild "
    "(it reuses the passages already encoded)"
)


class JobRunningError(RuntimeError):
    def __init__(self, job: Job) -> None:
        super().__init__(f"a rebuild is already running: job {job.id}")
        self.job = job


class JobManager:
    """Runs at most one rebuild at a time; jobs live in the store, the last ``keep`` kept.

    One server per data home: on start, jobs the store still shows as queued or running
    were left by a process that is gone, and are marked ``interrupted``.
    """

    def __init__(
        self,
        store: ArticleStore,
        on_status: Callable[[JobStatus], None] | None = None,
        keep: int = 50,
    ) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._keep = keep
        self._on_status = on_status or (lambda _s: None)
        left = store.interrupt_jobs(_UNFINISHED, INTERRUPTED_MESSAGE, time.time())
        if left:
            log.warning("%d rebuild job(s) were interrupted by a previous stop", left)

    def get(self, job_id: str) -> Job | None:
        return self._store.get_job(job_id)

    def running(self) -> Job | None:
        with self._lock:
            return self._current

    def start_rebuild(self, build: BuildFn) -> Job:
        with self._lock:
            if self._current is not None:
                raise JobRunningError(self._current)
            job = Job(id=uuid.uuid4().hex[:12], kind="rebuild", status="queued")
            job.created = time.time()
            self._store.save_job(job)
            self._store.prune_jobs(self._keep)
            self._current = job
        self._on_status("queued")
        thread = threading.Thread(
            target=self._run, args=(job, build), name=f"rebuild-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, build: BuildFn) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total
            self._save(job)

        job.status, job.started = "running", time.time()
        self._save(job)
        self._on_status("running")
        try:
            report = build(progress)
        except Exception as exc:
            log.exception("rebuild job %s failed", job.id)
            job.error = str(exc) or type(exc).__name__
            job.status = "failed"
        else:
            job.result = {
                "version": report.version,
                "articles": report.articles,
                "chunks": report.chunks,
                "encoded": report.encoded,
                "reused": report.reused,
                "seconds": round(report.seconds, 3),
                "pruned": list(report.pruned),
            }
            job.status = "succeeded"
        job.finished = time.time()
        self._save(job)
        with self._lock:
            self._current = None
        self._on_status(job.status)  # type: ignore[arg-type]

    def _save(self, job: Job) -> None:
        try:
            self._store.save_job(job)
        except Exception:
            log.exception("could not record the state of job %s", job.id)
