"""Background index rebuilds: one at a time, in a thread, observable by id."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from index.build import BuildReport, Progress

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed"]
BuildFn = Callable[[Progress], BuildReport]


@dataclass
class Job:
    id: str
    kind: str
    status: JobStatus = "queued"
    stage: str | None = None
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None


class JobRunningError(RuntimeError):
    def __init__(self, job: Job) -> None:
        super().__init__(f"a rebuild is already running: job {job.id}")
        self.job = job


class JobManager:
    """Runs at most one rebuild at a time and remembers the last ``keep`` jobs."""

    def __init__(
        self, on_status: Callable[[JobStatus], None] | None = None, keep: int = 50
    ) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self._on_status = on_status or (lambda _s: None)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.status in ("queued", "running")), None)

    def start_rebuild(self, build: BuildFn) -> Job:
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.status in ("queued", "running")), None)
            if busy is not None:
                raise JobRunningError(busy)
            job = Job(id=uuid.uuid4().hex[:12], kind="rebuild")
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
        self._on_status("queued")
        thread = threading.Thread(
            target=self._run, args=(job, build), name=f"rebuild-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, build: BuildFn) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        job.status, job.started = "running", time.time()
        self._on_status("running")
        try:
            report = build(progress)
        except Exception as exc:  # noqa: BLE001 - a job reports its failure, never dies silently
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
        self._on_status(job.status)
