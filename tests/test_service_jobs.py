"""Rebuild jobs live in the store: their outcome outlives the process that ran them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from akhbar.corpus.store import Store
from akhbar.index.base import BuildReport, Progress
from akhbar.service.jobs import JobManager, JobRunningError


def _report() -> BuildReport:
    return BuildReport(
        version="v-test", path=Path("x"), articles=3, chunks=7, encoded=5, reused=2,
        seconds=0.5, encode_seconds=0.4,
    )  # fmt: skip


def _wait_finished(jobs: JobManager, job_id: str) -> None:
    for _ in range(500):
        job = jobs.get(job_id)
        if job and job.status not in ("queued", "running"):
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"job {job_id} never finished")


def test_finished_job_is_read_back_by_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with Store(path) as store:
        jobs = JobManager(store)
        job = jobs.start_rebuild(lambda progress: (progress("encode", 4, 4), _report())[1])
        _wait_finished(jobs, job.id)
    with Store(path) as store:  # a restart: nothing but the file is shared
        seen = JobManager(store).get(job.id)
    assert seen is not None and seen.status == "succeeded"
    assert (seen.stage, seen.done, seen.total) == ("encode", 4, 4)
    assert seen.result is not None and seen.result["version"] == "v-test"
    assert seen.result["reused"] == 2 and seen.finished is not None


def test_failed_job_keeps_its_error(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        jobs = JobManager(store)

        def build(progress: Progress) -> BuildReport:
            raise OSError("disk full")

        job = jobs.start_rebuild(build)
        _wait_finished(jobs, job.id)
        seen = jobs.get(job.id)
    assert seen is not None and seen.status == "failed" and seen.error == "disk full"


def test_job_running_at_a_crash_reads_interrupted_with_its_progress(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    reached = threading.Event()
    release = threading.Event()

    def build(progress: Progress) -> BuildReport:
        progress("encode", 128, 640)
        reached.set()
        release.wait(30)
        raise RuntimeError("this process is gone")

    crashed = Store(path)
    jobs = JobManager(crashed)
    job = jobs.start_rebuild(build)
    assert reached.wait(30)
    with pytest.raises(JobRunningError):
        jobs.start_rebuild(build)
    # The process dies: its connection goes away without the job ever finishing.
    crashed.close()
    try:
        with Store(path) as store:
            restarted = JobManager(store)
            seen = restarted.get(job.id)
            assert seen is not None and seen.status == "interrupted"
            assert (seen.stage, seen.done, seen.total) == ("encode", 128, 640)
            assert seen.error and "interrupted" not in seen.error and "new rebuild" in seen.error
            assert seen.finished is not None and seen.result is None
            # Nothing is running any more: a new rebuild may start at once.
            again = restarted.start_rebuild(lambda progress: _report())
            _wait_finished(restarted, again.id)
            assert restarted.get(again.id).status == "succeeded"  # type: ignore[union-attr]
            assert restarted.get(job.id).status == "interrupted"  # type: ignore[union-attr]
    finally:
        release.set()


def test_only_the_most_recent_jobs_are_kept(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        jobs = JobManager(store, keep=3)
        ids = []
        for _ in range(5):
            job = jobs.start_rebuild(lambda progress: _report())
            _wait_finished(jobs, job.id)
            ids.append(job.id)
        assert [jobs.get(i) is not None for i in ids] == [False, False, True, True, True]


def test_unknown_job_is_none(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        assert JobManager(store).get("does-not-exist") is None
