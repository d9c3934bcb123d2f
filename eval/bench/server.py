"""The real app under uvicorn on loopback: in a thread (shared engine) or a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from akhbar.service.qa import QAEngine
from akhbar.settings import Settings

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str
    pid: int

    def rss_mb(self) -> float:
        """The server process's resident memory now (the thread server: this process)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def _wait_ready(base: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{err[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"server at {base} not ready after {READY_TIMEOUT_S:.0f} s")


def server_env(settings: Settings) -> dict[str, str]:
    """The settings a subprocess server needs, as the AKHBAR_* variables it reads."""
    env = {
        "AKHBAR_HOME": str(settings.home),
        "AKHBAR_MODEL": settings.model,
        "AKHBAR_PRECISION": settings.precision,
        # The limiter is per client and the load generator is one client.
        "AKHBAR_RATE_LIMIT_PER_MINUTE": "0",
        "AKHBAR_LOCAL__EXACT_INDEX_MAX": str(settings.local.exact_index_max),
        "AKHBAR_LOCAL__COMPACT_INDEX_MIN": str(settings.local.compact_index_min),
    }
    if settings.threads:
        env["AKHBAR_THREADS"] = str(settings.threads)
    return env


@contextlib.contextmanager
def serve(settings: Settings, engine: QAEngine | None = None) -> Iterator[Served]:
    """Yield a running server (its base URL and process id).

    With ``engine`` the server runs in a thread of this process (cheap: the model is
    already loaded; what tests use). Without, it runs in its own process as it would in
    production, so the load generator does not compete with it for this process's GIL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if engine is not None:
        import uvicorn

        from akhbar.service.app import create_app

        app = create_app(settings.model_copy(update={"rate_limit_per_minute": 0}), engine)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            _wait_ready(base)
            yield Served(base, os.getpid())
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        return
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "akhbar.service.app:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    cmd += ["--no-access-log"]
    # stderr to a file, not a pipe: a pipe nobody reads would block a chatty server.
    with tempfile.NamedTemporaryFile(prefix="akhbar-bench-server-", suffix=".log") as log:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **server_env(settings)}, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            _wait_ready(base, proc, Path(log.name))
            yield Served(base, proc.pid)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
