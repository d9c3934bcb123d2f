"""What a store engine raises that a caller reports rather than crashes on."""

from __future__ import annotations


class StoreUnavailableError(RuntimeError):
    """The store's database cannot be reached now (down, restarting, no free connection):
    a state to report (the service answers 503, try again), not a bug. Nothing was
    committed by the call that raised it."""
