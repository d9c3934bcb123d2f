"""Feed subscriptions polled on a schedule, their items landed through the normal ingest.

Each due feed is polled in a worker thread of its own, from fetch to landing, so a feed
that times out, answers 500 or serves garbage costs only its own worker: the others land
their items as soon as they are read. Landing is serialised (one ``ingest`` call at a time,
which is what keeps near-duplicate detection exact across feeds).

A poll sends the ETag and Last-Modified it stored (conditional GET); a 304 lands nothing.
The next poll comes after the feed's interval (or its ``<ttl>``, if longer), jittered so
that feeds added together do not stay in step; after a failure the wait doubles with each
consecutive failure, up to a cap, and is never shorter than the server's ``Retry-After``.
A feed's validators are saved only after its items are in the store, so a poll that dies
half-way is redone in full, never answered 304 over items that were never landed.

Items that carry only a summary get their article page fetched (the same SSRF-checked
fetcher) and extracted with trafilatura, with requests to one host spaced out.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

from akhbar.corpus.ingest import ingest
from akhbar.corpus.models import IngestReport, RawItem, make_article_id
from akhbar.corpus.sources import parse_feed_document
from akhbar.corpus.sources.decoding import decode
from akhbar.corpus.sources.fetch import Fetcher, FetchError, FetchTimeout, UnresolvedHost
from akhbar.corpus.sources.html import parse_html
from akhbar.corpus.sources.rejection import Rejection
from akhbar.corpus.store import ArticleStore, FeedRecord
from akhbar.corpus.valid_text import first_invalid_character

log = logging.getLogger(__name__)

Outcome = Literal["ok", "not_modified", "error", "timeout", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "not_modified", "error", "timeout", "invalid")
Item = RawItem | Rejection
Land = Callable[[ArticleStore, Iterable[Item]], IngestReport]

MIN_INTERVAL_S = 60.0
MAX_INTERVAL_S = 7 * 86_400.0
DEFAULT_EVERY = "15m"
MAX_URL_CHARS = 2000
MAX_OUTLET_CHARS = 200
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
# RSS 2.0's <ttl> (minutes) sits in the channel head; bytes, so any ASCII-based encoding.
_TTL = re.compile(rb"<ttl>\s*(\d{1,7})\s*</ttl>", re.IGNORECASE)
_TTL_SCAN_BYTES = 65_536


class FeedError(ValueError):
    """A subscription that cannot be made: bad URL, bad interval, refused address."""


def parse_every(text: str) -> float:
    """Seconds in an interval written as a number and a unit: ``90s``, ``15m``, ``2h``, ``1d``."""
    m = _EVERY.match(text)
    if not m:
        raise FeedError(f"interval {text!r} is not a number and a unit (s, m, h, d), e.g. 15m")
    seconds = float(m[1]) * _UNITS[m[2].lower()]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise FeedError(f"interval {text!r} is out of range: from 1m to 7d")
    return seconds


def format_every(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def check_feed_url(url: str, fetcher: Fetcher) -> str:
    """``url`` stripped, or FeedError if the poller could never fetch it (not http(s), no
    host, a private address without the opt-in). A name that does not resolve now is
    accepted: DNS faults pass, and the feed's last error will say so."""
    url = url.strip()
    if not url:
        raise FeedError("the feed URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise FeedError(f"the feed URL is over {MAX_URL_CHARS} characters")
    if (bad := first_invalid_character(url)) is not None or not url.isprintable():
        what = bad.describe() if bad else "a space or control character"
        raise FeedError(f"the feed URL contains {what}")
    if any(ch.isspace() for ch in url):
        raise FeedError("the feed URL contains a space")
    try:
        fetcher.check_url(url)
    except UnresolvedHost:
        pass
    except FetchError as exc:
        raise FeedError(str(exc)) from exc
    except ValueError as exc:  # urlsplit on a malformed host ("http://[")
        raise FeedError(f"not a URL: {exc}") from exc
    return url


def check_outlet(outlet: str | None) -> str | None:
    """The outlet name a subscription gives its items: spaces collapsed, None if blank."""
    if outlet is None:
        return None
    if (bad := first_invalid_character(outlet)) is not None:
        raise FeedError(f"the outlet name contains {bad.describe()}")
    name = " ".join(outlet.split())
    if len(name) > MAX_OUTLET_CHARS:
        raise FeedError(f"the outlet name is over {MAX_OUTLET_CHARS} characters")
    return name or None


def new_feed(url: str, outlet: str | None, interval_s: float, now: float) -> FeedRecord:
    """A subscription due at once."""
    return FeedRecord(
        url=url, outlet=outlet or None, interval_s=interval_s, created=now, next_poll=now
    )


class FeedExists(FeedError):
    """The URL is already subscribed."""


def subscribe(
    store: ArticleStore,
    fetcher: Fetcher,
    url: str,
    *,
    outlet: str | None = None,
    every: str = DEFAULT_EVERY,
    now: float | None = None,
) -> FeedRecord:
    """Check and store a subscription, due at once (the CLI's and the API's one way in)."""
    feed = new_feed(
        check_feed_url(url, fetcher),
        check_outlet(outlet),
        parse_every(every),
        time.time() if now is None else now,
    )
    if not store.add_feed(feed):
        raise FeedExists(f"{feed.url} is already subscribed")
    return feed


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def feed_ttl_seconds(content: bytes) -> float | None:
    m = _TTL.search(content[:_TTL_SCAN_BYTES])
    return int(m[1]) * 60.0 if m else None


@dataclass(slots=True, frozen=True)
class PollerOptions:
    workers: int = 8  # feeds polled at once
    timeout_s: float = 20.0  # one fetch (a feed, a page), every hop and the body included
    host_delay_s: float = 1.0  # between two page fetches to one host
    full_text_below: int = 500  # an item with less text than this is a summary
    max_backoff_s: float = 6 * 3600.0  # the longest wait after failures (or Retry-After)
    jitter: float = 0.1  # each wait is scaled by a random factor within 1 ± this


@dataclass(slots=True)
class PollResult:
    url: str
    outcome: Outcome
    lag_s: float  # how long after it was due the poll started
    next_poll: float
    status: int | None = None
    report: IngestReport | None = None
    new_items: int = 0
    pages_fetched: int = 0
    page_failures: int = 0
    error: str | None = None


class HostPacer:
    """Spaces requests to one host ``delay_s`` apart, across threads (politeness)."""

    def __init__(
        self,
        delay_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._delay = delay_s
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._delay
        if slot > now:
            self._sleep(slot - now)


class Poller:
    """Polls the store's due feeds; ``land`` is the ingest path every item goes through."""

    def __init__(
        self,
        store: ArticleStore,
        fetcher: Fetcher,
        options: PollerOptions | None = None,
        *,
        land: Land = ingest,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        pacer: HostPacer | None = None,
        on_result: Callable[[PollResult], None] | None = None,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.options = options or PollerOptions()
        self._land = land
        self._clock = clock
        self._rng = rng or random.Random()
        self._pacer = pacer or HostPacer(self.options.host_delay_s)
        self._on_result = on_result
        self._land_lock = threading.Lock()

    # -- scheduling ------------------------------------------------------------------------

    def due(self, now: float | None = None) -> list[FeedRecord]:
        now = self._clock() if now is None else now
        return [f for f in self.store.list_feeds() if f.next_poll <= now]

    def wait_after(self, feed: FeedRecord, retry_after: float | None = None) -> float:
        """Seconds until ``feed``'s next poll, given its state after this one (``failures``
        already counted)."""
        cap = max(self.options.max_backoff_s, feed.interval_s)
        base = max(feed.interval_s, min(feed.ttl_s or 0.0, cap))
        if feed.failures:
            base = min(feed.interval_s * 2 ** min(feed.failures, 30), cap)
        wait = base * (1 + self._rng.uniform(-self.options.jitter, self.options.jitter))
        if retry_after is not None:
            wait = max(wait, min(retry_after, cap))
        return wait

    # -- polling ---------------------------------------------------------------------------

    def poll_due(self) -> list[PollResult]:
        """Poll every due feed once, concurrently; return when all are done (each fetch is
        bounded by ``options.timeout_s``)."""
        feeds = self.due()
        if not feeds:
            return []
        workers = max(1, min(self.options.workers, len(feeds)))
        with ThreadPoolExecutor(workers, thread_name_prefix="akhbar-feed") as pool:
            futures = [pool.submit(self.poll, feed) for feed in feeds]
        return [r for f in futures if (r := f.result()) is not None]

    def run(self, stop: threading.Event, *, tick_s: float = 1.0) -> None:
        """Poll feeds as they fall due until ``stop`` is set. A feed still being polled is
        not started again; feeds added or removed elsewhere are seen within ``tick_s``."""
        running: dict[str, Future[PollResult | None]] = {}
        pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="akhbar-feed")
        try:
            while not stop.is_set():
                running = {url: f for url, f in running.items() if not f.done()}
                try:
                    feeds = self.due()
                except Exception:  # a locked or broken store: try again next tick
                    log.exception("cannot read the feed subscriptions")
                    feeds = []
                for feed in feeds:
                    if feed.url not in running and len(running) < self.options.workers:
                        running[feed.url] = pool.submit(self.poll, feed)
                stop.wait(tick_s)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def poll(self, feed: FeedRecord) -> PollResult | None:
        """Poll one feed and land its items; None if another poller took it first. Never
        raises: whatever goes wrong is this feed's outcome and last error."""
        started = self._clock()
        lease = started + max(feed.interval_s, 10 * self.options.timeout_s)
        try:
            if not self.store.claim_feed(feed.url, feed.next_poll, lease):
                return None
            result = self._poll(feed, started)
        except Exception as exc:
            log.exception("polling %s failed", feed.url)
            result = self._finish(
                feed, started, "error", error=f"poll failed: {type(exc).__name__}: {exc}"
            )
        log.info(
            "feed %s: %s, %d new, next in %.0f s",
            feed.url,
            result.outcome,
            result.new_items,
            result.next_poll - self._clock(),
        )
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("feed result observer failed")
        return result

    def _poll(self, feed: FeedRecord, started: float) -> PollResult:
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        try:
            fetched = self.fetcher.fetch(feed.url, headers=headers)
        except FetchTimeout as exc:
            return self._finish(feed, started, "timeout", error=str(exc))
        except FetchError as exc:
            wait = retry_after_seconds(exc.retry_after, self._clock())
            return self._finish(
                feed, started, "error", status=exc.status, error=str(exc), retry_after=wait
            )
        if fetched.status == 304:
            # A 304 may carry fresher validators; otherwise the stored ones stay.
            return self._finish(
                feed,
                started,
                "not_modified",
                status=304,
                etag=fetched.headers.get("etag") or feed.etag,
                last_modified=fetched.headers.get("last-modified") or feed.last_modified,
                ttl_s=feed.ttl_s,
            )
        items = parse_feed_document(fetched.content, feed.url, charset=fetched.charset)
        if not any(isinstance(i, RawItem) for i in items):
            broken = [i for i in items if isinstance(i, Rejection) and i.source == feed.url]
            if broken:
                # Not logged as an ingest rejection at every poll: it is the feed's error.
                return self._finish(
                    feed, started, "invalid", status=fetched.status, error=broken[0].reason
                )
        items, pages, page_failures = self._complete(feed, items)
        with self._land_lock:
            report = self._land(self.store, items)
        return self._finish(
            feed,
            started,
            "ok",
            status=fetched.status,
            etag=fetched.headers.get("etag"),
            last_modified=fetched.headers.get("last-modified"),
            ttl_s=feed_ttl_seconds(fetched.content),
            report=report,
            pages=(pages, page_failures),
        )

    def _complete(self, feed: FeedRecord, items: Sequence[Item]) -> tuple[list[Item], int, int]:
        """Items ready to land: the subscription's outlet, and article pages for summaries."""
        out: list[Item] = []
        pages = failures = 0
        for item in items:
            if isinstance(item, RawItem):
                if feed.outlet:
                    item = replace(item, outlet=feed.outlet)
                if item.url and len(item.body) < self.options.full_text_below:
                    if self.store.stored_state(make_article_id(item)) is not None:
                        # Landed before, maybe with its page's text: a summary must not
                        # replace that text, and the page is not fetched again.
                        continue
                    full = self._with_page(item)
                    pages += 1
                    failures += full is None
                    item = full or item
            out.append(item)
        return out, pages, failures

    def _with_page(self, item: RawItem) -> RawItem | None:
        """``item`` with its article page's text, or None if the page gave nothing better
        (the summary is landed then)."""
        assert item.url is not None
        self._pacer.wait(item.url)
        try:
            page = self.fetcher.fetch(item.url)
        except FetchError as exc:
            log.info("article page of a feed item not fetched: %s", exc)
            return None
        extracted = next(
            (
                i
                for i in parse_html(
                    decode(page.content, page.charset).text, item.url, page.final_url
                )
                if isinstance(i, RawItem)
            ),
            None,
        )
        if extracted is None or len(extracted.body) <= len(item.body):
            return None
        return replace(
            item,
            body=extracted.body,
            title=item.title or extracted.title,
            published=item.published or extracted.published,
            author=item.author or extracted.author,
            declared_language=item.declared_language or extracted.declared_language,
        )

    def _finish(
        self,
        feed: FeedRecord,
        started: float,
        outcome: Outcome,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        ttl_s: float | None = None,
        report: IngestReport | None = None,
        pages: tuple[int, int] = (0, 0),
    ) -> PollResult:
        now = self._clock()
        failed = outcome in ("error", "timeout", "invalid")
        new = report.stored if report is not None else 0
        state = replace(feed, last_poll=started, last_outcome=outcome, last_new_items=new)
        if failed:
            state.failures += 1
            state.last_error = error
            state.last_error_at = now
        else:
            state.failures = 0
            state.last_success = now
            state.etag, state.last_modified, state.ttl_s = etag, last_modified, ttl_s
            state.total_new_items += new
        state.next_poll = now + self.wait_after(state, retry_after)
        try:
            # An update only: a feed removed while it was polled stays removed.
            self.store.save_feed_state(state)
        except Exception:
            log.exception("cannot save the state of feed %s", feed.url)
        return PollResult(
            url=feed.url,
            outcome=outcome,
            lag_s=max(0.0, started - feed.next_poll),
            next_poll=state.next_poll,
            status=status,
            report=report,
            new_items=new,
            pages_fetched=pages[0],
            page_failures=pages[1],
            error=error,
        )


__all__ = [
    "DEFAULT_EVERY",
    "OUTCOMES",
    "FeedError",
    "FeedExists",
    "HostPacer",
    "Poller",
    "PollerOptions",
    "PollResult",
    "check_feed_url",
    "check_outlet",
    "format_every",
    "new_feed",
    "parse_every",
    "retry_after_seconds",
    "subscribe",
]
