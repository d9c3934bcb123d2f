"""Access-log output: one JSON object per line, on its own handler."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

ACCESS_LOGGER = "akhbar.access"


class _JsonLinesHandler(logging.StreamHandler):
    """Marker class, so configuring twice does not print every line twice."""


def configure_access_log(stream: TextIO | None = None) -> None:
    """Send access records (already JSON, see middleware) to ``stream`` unprefixed.

    They do not propagate to the root logger, whose human format would break the JSON lines.
    """
    logger = logging.getLogger(ACCESS_LOGGER)
    if any(isinstance(h, _JsonLinesHandler) for h in logger.handlers):
        return
    handler = _JsonLinesHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
