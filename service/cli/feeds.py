"""Feed subscriptions (`akhbar feeds add|list|remove`) and the poller (`akhbar watch`).

`akhbar serve --watch` runs the same poller beside the server (``background_poller``).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from akhbar.corpus.poller import (
    DEFAULT_EVERY,
    FeedError,
    PollResult,
    format_every,
    subscribe,
)
from akhbar.corpus.store import ArticleStore, FeedRecord
from akhbar.pipeline import feed_poller, fetcher, open_store, store_errors, store_location
from akhbar.service.cli.common import console, err, fail, load_settings
from akhbar.settings import Settings

feeds_app = typer.Typer(
    help="Feed subscriptions that `akhbar watch` (or `akhbar serve --watch`) polls.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@contextmanager
def _store(settings: Settings) -> Iterator[ArticleStore]:
    try:
        store = open_store(settings)
    except store_errors(opening=True) as exc:
        fail(escape(f"cannot open the store at {store_location(settings)}: {exc}"))
    try:
        yield store
    except store_errors() as exc:
        fail(escape(f"the store at {store_location(settings)} failed: {exc}"))
    finally:
        store.close()


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


@feeds_app.command("add")
def add(
    url: Annotated[str, typer.Argument(metavar="URL", help="The RSS or Atom feed's URL.")],
    outlet: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="File its items under this outlet (default: the feed's title)."
        ),
    ] = None,
    every: Annotated[
        str,
        typer.Option(
            metavar="INTERVAL",
            help="Poll interval: a number and a unit (s, m, h, d), from 1m to 7d. A longer "
            "<ttl> in the feed wins.",
        ),
    ] = DEFAULT_EVERY,
) -> None:
    """Subscribe to a feed; the next `akhbar watch` polls it at once.

    Loopback and private addresses are refused unless AKHBAR_ALLOW_PRIVATE_URLS=1."""
    settings = load_settings()
    with _store(settings) as store:
        try:
            feed = subscribe(store, fetcher(settings), url, outlet=outlet, every=every)
        except FeedError as exc:
            fail(escape(str(exc)))
    console.print(
        f"subscribed to {feed.url} every {format_every(feed.interval_s)}"
        + (f" as {feed.outlet}" if feed.outlet else ""),
        markup=False,
        soft_wrap=True,
    )


def _row(feed: FeedRecord) -> dict[str, Any]:
    return {
        "url": feed.url,
        "outlet": feed.outlet,
        "every": format_every(feed.interval_s),
        "next_poll": _when(feed.next_poll),
        "last_poll": _when(feed.last_poll),
        "last_outcome": feed.last_outcome,
        "last_success": _when(feed.last_success),
        "last_error": feed.last_error,
        "last_error_at": _when(feed.last_error_at),
        "failures": feed.failures,
        "last_new_items": feed.last_new_items,
        "total_new_items": feed.total_new_items,
    }


@feeds_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Subscriptions, the next due first: last success, last error, new items, next poll."""
    settings = load_settings()
    with _store(settings) as store:
        feeds = store.list_feeds()
    if as_json:
        console.print_json(json.dumps([_row(f) for f in feeds]))
        return
    if not feeds:
        console.print("no feed subscriptions: add one with `akhbar feeds add URL`", markup=False)
        return
    # One block per feed, not a table: URLs and error messages stay whole at any width.
    for f in feeds:
        head = (
            f.url + (f" ({f.outlet})" if f.outlet else "") + f", every {format_every(f.interval_s)}"
        )
        console.print(head, markup=False, soft_wrap=True, style="bold")
        console.print(
            f"  last success {_when(f.last_success)}; new {f.last_new_items} "
            f"(total {f.total_new_items}); next poll {_when(f.next_poll)}",
            markup=False,
            soft_wrap=True,
        )
        if f.last_error:
            streak = f" ({f.failures} in a row)" if f.failures else ""
            console.print(
                f"  last error {_when(f.last_error_at)}: {f.last_error}{streak}",
                markup=False,
                soft_wrap=True,
            )


@feeds_app.command("remove")
def remove(
    url: Annotated[str, typer.Argument(metavar="URL", help="The subscribed URL.")],
) -> None:
    """Unsubscribe. The articles the feed brought stay in the store."""
    settings = load_settings()
    with _store(settings) as store:
        removed = store.remove_feed(url.strip())
    if not removed:
        fail(escape(f"no feed subscription for {url} (see `akhbar feeds list`)"))
    console.print(f"unsubscribed from {url.strip()}", markup=False, soft_wrap=True)


def _report(result: PollResult) -> None:
    line = f"{result.url}: {result.outcome}"
    if result.report is not None:
        r = result.report
        line += f", {r.stored} new, {r.unchanged} unchanged, {r.duplicate} duplicate"
        line += f", {r.rejected} rejected"
    if result.pages_fetched:
        line += f", {result.pages_fetched} pages fetched ({result.page_failures} failed)"
    if result.error:
        line += f": {result.error}"
    console.print(line, markup=False, soft_wrap=True)


def watch(
    once: Annotated[
        bool, typer.Option("--once", help="Poll the feeds that are due once, then exit.")
    ] = False,
) -> None:
    """Poll subscribed feeds as they fall due, until Ctrl-C; new items land in the store
    as with `akhbar ingest` (language, duplicates, rejections).

    Each feed is polled with a conditional GET; a failing feed is retried later and later
    (doubling), never holding up the others. Exit status 0; --once exits 1 if a due feed
    failed."""
    settings = load_settings()
    with _store(settings) as store:
        if not store.list_feeds():
            fail("no feed subscriptions: add one with `akhbar feeds add URL`")
        poller = feed_poller(settings, store, on_result=_report)
        if once:
            results = poller.poll_due()
            if not results:
                console.print("no feed is due", markup=False)
            if any(r.outcome in ("error", "timeout", "invalid") for r in results):
                raise typer.Exit(1)
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda _s, _f: stop.set())
        err.print(f"watching {len(store.list_feeds())} feed(s); Ctrl-C stops")
        poller.run(stop)
        err.print("stopped")


@contextmanager
def background_poller(
    settings: Settings, on_result: Callable[[PollResult], None] | None = None
) -> Iterator[None]:
    """The poller in a thread of this process (`akhbar serve --watch`), stopped on exit."""
    store = open_store(settings)
    stop = threading.Event()
    poller = feed_poller(settings, store, on_result=on_result)
    thread = threading.Thread(target=poller.run, args=(stop,), name="akhbar-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(settings.feeds.timeout_s + 5)
        store.close()
