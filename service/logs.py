"""Log output: the CLI's human lines (quiet by default) and the access log's JSON lines."""

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


# Top-level packages whose INFO/DEBUG records `-v`/`-vv` show; every other logger (bm25s,
# sentence_transformers, transformers, httpx, faiss, uvicorn...) is held at WARNING.
OWN_PACKAGES = frozenset({"akhbar", "__main__"})


class _ThirdPartyAtWarning(logging.Filter):
    """Drops third-party records under WARNING at the handler, not by setting the
    libraries' logger levels: some (bm25s) set their own level to DEBUG when imported,
    which happens after the CLI has configured logging."""

    def __init__(self, third_party_level: int) -> None:
        super().__init__()
        self.third_party_level = third_party_level

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN_PACKAGES
        return own or record.levelno >= self.third_party_level


def level_for(verbosity: int) -> int:
    """0: warnings only; 1 (``-v``): INFO; 2 or more (``-vv``): DEBUG."""
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def configure_cli_logging(verbosity: int, handler: logging.Handler) -> None:
    """Route log records to ``handler`` at the level ``verbosity`` asks for.

    Third-party libraries stay at WARNING up to ``-vv``; ``-vvv`` lets their DEBUG through.
    """
    level = level_for(verbosity)
    root = logging.getLogger()
    # Configuring twice (tests invoking the CLI repeatedly) replaces the handler.
    for old in [h for h in root.handlers if getattr(h, "_akhbar_cli", False)]:
        root.removeHandler(old)
    handler._akhbar_cli = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    handler.addFilter(_ThirdPartyAtWarning(logging.DEBUG if verbosity >= 3 else logging.WARNING))
    root.addHandler(handler)
    root.setLevel(level)
