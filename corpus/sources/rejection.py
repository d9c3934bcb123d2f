"""Why an input could not become items: reported, never raised past the source layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Rejection:
    source: str  # path, URL, or "path:line" for one line of a JSONL file
    reason: str
    # True when a target the caller named (not a file found inside it) could not be read at
    # all: missing, unreadable, or a URL that could not be fetched. The CLI exits 1 on it.
    unreadable: bool = False


@dataclass(slots=True, frozen=True)
class Skipped:
    """A file a directory walk passed over (unknown format): not an item, but reported."""

    source: str
    reason: str
