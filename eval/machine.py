"""Where and from what a result came: commit, machine, libraries."""

from __future__ import annotations

import os
import platform
import subprocess
from contextlib import suppress
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def commit_info() -> dict[str, Any]:
    """HEAD and whether eval/, index/, corpus/ or service/ differ from it, since a dirty
    tree means the numbers may not come from that commit alone."""
    head = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", "eval", "index", "corpus", "service")
    return {"hash": head, "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": load_average(),
    }
    for pkg in ("torch", "sentence-transformers", "faiss-cpu", "bm25s", "numpy"):
        with suppress(metadata.PackageNotFoundError):
            info[pkg] = metadata.version(pkg)
    with suppress(ImportError):
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def load_average() -> list[float] | None:
    """1/5/15-minute load: timings on a shared machine mean little without it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
