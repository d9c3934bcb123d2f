"""What every command of the ``akhbar`` command line shares: consoles, settings, errors,
progress bars, and the checks run before loading anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from akhbar.index.base import IndexStateError, NoIndexError
from akhbar.index.local.versions import VersionStore
from akhbar.settings import Settings, default_home

HELP = f"""Akhbar: ask questions in French, Spanish or English over news; get cited passages.

Start with `akhbar quickstart` (the bundled sample corpus, then the web page), or
`akhbar ingest PATH...`, `akhbar index`, `akhbar ask "QUESTION"`.

Data (the article store, the built model, index versions, eval runs) lives in the
directory AKHBAR_HOME names, else in {default_home()}, whichever directory you run
from. `akhbar info` shows which, and what is in it. Other settings: AKHBAR_* variables
(see akhbar/settings.py).
"""

# The time the built-in model's one-off build takes (measured 14-28 s on 2 cores).
MODEL_BUILD_HINT = "about 15-30 s, once"
NO_INDEX_HINT = (
    "run `akhbar quickstart --no-serve` (the bundled sample), "
    "or `akhbar ingest PATH...` then `akhbar index`"
)
console = Console()
err = Console(stderr=True)


def load_settings() -> Settings:
    return Settings()


def fail(message: str) -> NoReturn:
    # soft_wrap: one line, however narrow the terminal (or a test runner's 80 columns).
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def stages(bar: Progress) -> Callable[[str, int, int], None]:
    """A pipeline progress callback: one bar per stage, made when the stage first reports."""
    tasks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return progress


def ensure_model(settings: Settings, *, force: bool = False) -> None:
    """Build the built-in model now if it is missing, under a progress bar, rather than
    silently inside whatever loads it first."""
    from akhbar.service.info import model_needs_build

    if not force and not model_needs_build(settings):
        return
    from akhbar.index.model_build import ensure_builtin_model

    # The build has no steps to count: an indeterminate (pulsing) bar and the time so far.
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        bar.add_task(f"building the offline model ({MODEL_BUILD_HINT})", total=None)
        path = ensure_builtin_model(settings.models_dir, force=force)
    err.print(f"model built at {path}")


def require_index(settings: Settings) -> str:
    """The current index version, or exit with the command that makes one. Checked before
    anything is loaded, so a mistaken home builds no model and creates no files."""
    from rich.markup import escape

    try:
        if settings.backend == "postgres":
            from akhbar.pipeline import postgres_version

            version = postgres_version(settings)
            if version is None:
                fail(escape(f"no index in the database: {NO_INDEX_HINT}"))
            return version
        return VersionStore(settings.index_dir).current_path().name
    except NoIndexError:
        fail(escape(f"no index in {settings.home}: {NO_INDEX_HINT}"))
    except IndexStateError as exc:
        fail(escape(str(exc)))
