"""Why an input could not become items: reported, never raised past the source layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Rejection:
    source: str  # path, URL, or "path:line" for one line of a JSONL file
    reason: str
