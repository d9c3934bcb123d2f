"""The feed poller against a real HTTP server on loopback (with the private-URL opt-in):
changing RSS and Atom, 304s, failing, garbage and slow feeds, backoff, restarts, summaries.

The clock is injected: no test waits for a schedule, only for HTTP on loopback.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from feed_server import Conditional, FeedServer, atom, fixed, page, rss, serving, stories

from akhbar.corpus.models import IngestReport
from akhbar.corpus.poller import (
    FeedError,
    HostPacer,
    Poller,
    PollerOptions,
    PollResult,
    check_feed_url,
    format_every,
    new_feed,
    parse_every,
    retry_after_seconds,
)
from akhbar.corpus.sources.fetch import Fetcher
from akhbar.corpus.store import Store

STORIES = stories()
T0 = 1_800_000_000.0
EVERY = 900.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "akhbar.sqlite3") as s:
        yield s


def fetcher(timeout: float = 5.0) -> Fetcher:
    return Fetcher(timeout=timeout, total_timeout=timeout, allow_private=True)


def poller(
    store: Store,
    clock: Clock,
    *,
    timeout: float = 5.0,
    results: list[PollResult] | None = None,
    pacer: HostPacer | None = None,
    **options: object,
) -> Poller:
    opts = PollerOptions(**{"jitter": 0.0, "timeout_s": timeout, "host_delay_s": 0.0, **options})
    return Poller(
        store,
        fetcher(timeout),
        opts,
        clock=clock,
        pacer=pacer,
        on_result=results.append if results is not None else None,
    )


def subscribe(store: Store, url: str, clock: Clock, outlet: str | None = None) -> None:
    assert store.add_feed(new_feed(url, outlet, EVERY, clock()))


def titles(store: Store) -> set[str]:
    return {a.title for a in store.iter_articles(include_duplicates=True)}


def by_url(results: list[PollResult]) -> dict[str, PollResult]:
    return {r.url: r for r in results}


# -- the happy path: RSS and Atom, conditional GET -----------------------------------------


def test_rss_and_atom_land_then_unchanged_feeds_answer_304(server: FeedServer, store: Store):
    feed_rss = Conditional(lambda: rss([(s, None) for s in STORIES[:3]]))
    feed_atom = Conditional(lambda: atom(STORIES[3:5]), "application/atom+xml")
    server.routes |= {"/rss": feed_rss, "/atom": feed_atom}
    clock = Clock()
    subscribe(store, server.url("/rss"), clock, outlet="Le Fil")
    subscribe(store, server.url("/atom"), clock)
    p = poller(store, clock)

    first = by_url(p.poll_due())
    assert {r.outcome for r in first.values()} == {"ok"}
    assert first[server.url("/rss")].new_items == 3 and first[server.url("/atom")].new_items == 2
    assert titles(store) == {s.title for s in STORIES[:5]}
    outlets = {a.title: a.outlet for a in store.iter_articles()}
    assert outlets[STORIES[0].title] == "Le Fil"  # the subscription's name wins
    assert outlets[STORIES[3].title] == "Test Atom"  # else the feed's own title
    assert {a.language for a in store.iter_articles()} == {"fr"}

    # Not due yet: nothing is fetched.
    clock.now += EVERY - 1
    assert p.poll_due() == []
    clock.now += 2
    second = p.poll_due()
    assert {r.outcome for r in second} == {"not_modified"}
    assert feed_rss.full_responses == 1 and feed_atom.full_responses == 1
    sent = [h for path, h in server.hits if path == "/rss"][-1]
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"]

    # The feed changes: only the new item is new; the old ones are recognised.
    feed_rss.change(lambda: rss([(s, None) for s in [*STORIES[:3], STORIES[5]]]))
    clock.now += EVERY + 1
    third = by_url(p.poll_due())
    changed = third[server.url("/rss")]
    assert changed.outcome == "ok" and changed.new_items == 1
    assert changed.report is not None and changed.report.unchanged == 3
    assert third[server.url("/atom")].outcome == "not_modified"
    listed = {f.url: f for f in store.list_feeds()}
    assert listed[server.url("/rss")].total_new_items == 4
    assert listed[server.url("/rss")].etag == '"v2"'


# -- failures: each costs its own feed only ------------------------------------------------


def test_failing_garbage_and_slow_feeds_cost_the_good_feed_nothing(
    server: FeedServer, store: Store
):
    release = threading.Event()

    def slow(_h: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        release.wait(10)
        return 200, {"Content-Type": "application/rss+xml"}, rss([(STORIES[9], None)])

    server.routes |= {
        "/good": Conditional(lambda: rss([(s, None) for s in STORIES[:6]])),
        "/500": fixed(500, b"boom"),
        "/garbage": fixed(200, b"<<<this is {not} a feed>>> \x00\x01", "application/xml"),
        "/html": fixed(200, b"<html><body><p>Maintenance</p></body></html>", "text/html"),
        "/slow": slow,
    }
    clock = Clock()
    for path in ("/slow", "/500", "/garbage", "/html", "/good"):
        subscribe(store, server.url(path), clock)
    try:
        results = by_url(poller(store, clock, timeout=2.0).poll_due())
    finally:
        release.set()

    outcome = {path: results[server.url(path)].outcome for path in server.routes}
    assert outcome == {
        "/good": "ok",
        "/500": "error",
        "/garbage": "invalid",
        "/html": "invalid",
        "/slow": "timeout",
    }
    assert results[server.url("/good")].new_items == 6
    assert titles(store) == {s.title for s in STORIES[:6]}  # all of them, nothing else
    assert results[server.url("/500")].status == 500
    feeds = {f.url: f for f in store.list_feeds()}
    for path in ("/500", "/garbage", "/html", "/slow"):
        f = feeds[server.url(path)]
        assert f.failures == 1 and f.last_error and f.last_success is None
        assert f.next_poll - clock.now == pytest.approx(2 * EVERY)  # backed off
        assert f.etag is None  # nothing from a failed poll is kept as a validator
    assert "timed out" in (feeds[server.url("/slow")].last_error or "")
    good = feeds[server.url("/good")]
    assert good.failures == 0 and good.last_error is None and good.next_poll == clock.now + EVERY
    # A broken feed is the feed's error, not an ingest rejection logged at every poll.
    assert not [e for e in store.ingest_log() if e.outcome == "rejected"]


def test_good_feed_lands_while_a_slow_feed_is_still_being_fetched(server: FeedServer, store: Store):
    """The slow feed is due first and answers only once the good feed's items have landed:
    a poller that waited for it would time out before landing anything from the good one."""
    slow_started, good_landed = threading.Event(), threading.Event()
    seen_in_flight: list[bool] = []

    def slow(_h: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        slow_started.set()
        good_landed.wait(8)
        return 200, {"Content-Type": "application/rss+xml"}, rss([(STORIES[7], None)])

    def good() -> bytes:
        # Answer only once the slow feed's request is in flight, so the two overlap
        # whatever order the workers' requests reach the server in.
        slow_started.wait(8)
        return rss([(STORIES[0], None)])

    server.routes |= {"/slow": slow, "/good": Conditional(good)}
    clock = Clock()
    subscribe(store, server.url("/slow"), clock)
    clock.now += 1
    subscribe(store, server.url("/good"), clock)
    clock.now += 1

    def observe(result: PollResult) -> None:
        if result.url == server.url("/good"):
            seen_in_flight.append(slow_started.is_set() and not good_landed.is_set())
            assert STORIES[0].title in titles(store)
            good_landed.set()

    p = Poller(
        store,
        fetcher(10.0),
        PollerOptions(jitter=0.0, timeout_s=10.0, workers=4),
        clock=clock,
        on_result=observe,
    )
    results = by_url(p.poll_due())
    assert seen_in_flight == [True]
    assert results[server.url("/slow")].outcome == "ok"  # it answered after all
    assert titles(store) == {STORIES[0].title, STORIES[7].title}


def test_backoff_doubles_per_failure_up_to_the_cap_then_resets(server: FeedServer, store: Store):
    feed = Conditional(lambda: rss([(STORIES[0], None)]))
    failing = True
    server.routes["/flaky"] = lambda h: (500, {}, b"down") if failing else feed(h)
    clock = Clock()
    subscribe(store, server.url("/flaky"), clock)
    p = poller(store, clock, max_backoff_s=8 * EVERY)
    waits = []
    for _ in range(5):
        (result,) = p.poll_due()
        assert result.outcome == "error"
        waits.append(result.next_poll - clock.now)
        clock.now = result.next_poll
    assert waits == [2 * EVERY, 4 * EVERY, 8 * EVERY, 8 * EVERY, 8 * EVERY]
    assert store.get_feed(server.url("/flaky")).failures == 5  # type: ignore[union-attr]
    failing = False
    (result,) = p.poll_due()
    assert result.outcome == "ok" and result.next_poll - clock.now == EVERY
    state = store.get_feed(server.url("/flaky"))
    assert state is not None and state.failures == 0 and state.last_success == clock.now
    assert state.last_error == "HTTP 500 from " + server.url("/flaky")  # kept for the list


def test_jitter_spreads_polls_within_bounds(store: Store):
    clock = Clock()
    p = Poller(store, fetcher(), PollerOptions(jitter=0.1), clock=clock)
    feed = new_feed("http://127.0.0.1/x", None, EVERY, clock())
    waits = {p.wait_after(feed) for _ in range(50)}
    assert len(waits) > 40 and all(0.9 * EVERY <= w <= 1.1 * EVERY for w in waits)


def test_retry_after_and_the_feeds_ttl_are_honoured(server: FeedServer, store: Store):
    server.routes |= {
        "/busy": fixed(503, b"later", **{"Retry-After": "7200"}),
        "/ttl": Conditional(lambda: rss([(STORIES[1], None)], ttl=120)),
        "/short-ttl": Conditional(lambda: rss([(STORIES[2], None)], ttl=1)),
    }
    clock = Clock()
    for path in server.routes:
        subscribe(store, server.url(path), clock)
    results = by_url(poller(store, clock).poll_due())
    wait = {path: results[server.url(path)].next_poll - clock.now for path in server.routes}
    assert wait["/busy"] == 7200  # longer than the first backoff (2 x 15 min)
    assert wait["/ttl"] == 7200  # <ttl>120</ttl> minutes beats the 15-minute interval
    assert wait["/short-ttl"] == EVERY  # a ttl never makes polls more frequent
    assert store.get_feed(server.url("/ttl")).ttl_s == 7200  # type: ignore[union-attr]


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("120", T0) == 120
    assert retry_after_seconds("Thu, 01 Jan 2027 00:02:00 GMT", 1798761600.0) == 120
    assert retry_after_seconds("soon", T0) is None
    assert retry_after_seconds(None, T0) is None


# -- restarts ------------------------------------------------------------------------------


def test_a_restarted_poller_resumes_with_conditional_gets(server: FeedServer, tmp_path: Path):
    feed = Conditional(lambda: rss([(s, None) for s in STORIES[:3]]))
    server.routes["/rss"] = feed
    clock = Clock()
    path = tmp_path / "akhbar.sqlite3"
    with Store(path) as store:
        subscribe(store, server.url("/rss"), clock)
        assert poller(store, clock).poll_due()[0].outcome == "ok"

    clock.now += EVERY + 1
    with Store(path) as store:  # a new process: only the store remembers
        (result,) = poller(store, clock).poll_due()
        assert result.outcome == "not_modified" and result.new_items == 0
        assert feed.full_responses == 1
        assert len(list(store.iter_articles())) == 3


def test_a_poll_whose_landing_fails_keeps_no_validators(server: FeedServer, store: Store):
    """Were the ETag saved, the next poll would get a 304 and the items would never land."""
    feed = Conditional(lambda: rss([(s, None) for s in STORIES[:2]]))
    server.routes["/rss"] = feed
    clock = Clock()
    subscribe(store, server.url("/rss"), clock)

    def broken_store(_store: Store, _items: object) -> IngestReport:
        raise sqlite3.OperationalError("disk I/O error")

    failing = Poller(store, fetcher(), PollerOptions(jitter=0.0), land=broken_store, clock=clock)
    (result,) = failing.poll_due()
    assert result.outcome == "error" and "disk I/O error" in (result.error or "")
    state = store.get_feed(server.url("/rss"))
    assert state is not None and state.etag is None and state.last_modified is None

    clock.now = result.next_poll
    (again,) = poller(store, clock).poll_due()
    assert again.outcome == "ok" and again.new_items == 2
    assert feed.full_responses == 2


def test_two_pollers_on_one_store_poll_each_due_feed_once(server: FeedServer, tmp_path: Path):
    feed = Conditional(lambda: rss([(STORIES[0], None)]))
    server.routes["/rss"] = feed
    clock = Clock()
    path = tmp_path / "akhbar.sqlite3"
    with Store(path) as a, Store(path) as b:
        subscribe(a, server.url("/rss"), clock)
        due = a.list_feeds()[0]
        results = [poller(a, clock).poll(due), poller(b, clock).poll(due)]
    assert [r is None for r in results] == [False, True]
    assert server.count("/rss") == 1


def test_a_feed_removed_while_polled_stays_removed(server: FeedServer, store: Store):
    clock = Clock()
    subscribe(store, server.url("/gone"), clock)

    def remove_then_answer(_h: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        store.remove_feed(server.url("/gone"))
        return 200, {"Content-Type": "application/rss+xml"}, rss([(STORIES[0], None)])

    server.routes["/gone"] = remove_then_answer
    (result,) = poller(store, clock).poll_due()
    assert result.outcome == "ok"  # its items landed ...
    assert store.list_feeds() == []  # ... and the subscription did not come back


def test_run_polls_until_stopped(server: FeedServer, store: Store):
    server.routes["/rss"] = Conditional(lambda: rss([(STORIES[0], None)]))
    subscribe(store, server.url("/rss"), Clock(time.time()))
    results: list[PollResult] = []
    p = Poller(store, fetcher(), PollerOptions(), on_result=results.append)
    stop = threading.Event()
    thread = threading.Thread(target=p.run, args=(stop,), kwargs={"tick_s": 0.05})
    thread.start()
    try:
        for _ in range(200):
            if results:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [r.outcome for r in results] == ["ok"]  # once: the next poll is 15 min away
    assert titles(store) == {STORIES[0].title}


# -- summaries: the article page is fetched and extracted ----------------------------------


def test_summary_items_get_their_article_page(server: FeedServer, store: Store):
    a, b, c = STORIES[10:13]
    feed = Conditional(
        lambda: rss(
            [
                (a, server.url("/news/a")),
                (b, server.url("/news/b")),
                (c, server.url("/news/missing")),
            ]
        )
    )
    server.routes |= {
        "/rss": feed,
        "/news/a": fixed(200, page(a), "text/html; charset=utf-8"),
        "/news/b": fixed(200, page(b), "text/html; charset=utf-8"),
    }
    clock = Clock()
    subscribe(store, server.url("/rss"), clock)
    slept: list[float] = []
    pacer = HostPacer(2.0, clock=lambda: 0.0, sleep=slept.append)
    (result,) = poller(store, clock, pacer=pacer).poll_due()

    assert result.outcome == "ok" and result.new_items == 3
    assert (result.pages_fetched, result.page_failures) == (3, 1)
    texts = {x.title: x.text for x in store.iter_articles()}
    last_paragraph = a.body.split("\n\n")[-1].strip()
    assert last_paragraph[:80] in texts[a.title]  # the page's text, not the feed's summary
    assert "Accueil" not in texts[a.title] and "droits réservés" not in texts[a.title]
    assert len(texts[b.title]) > 3 * len(b.summary)
    assert texts[c.title] == c.summary.strip()  # no page: the summary is kept, not lost
    # Three pages on one host, two seconds apart (the clock stands still here).
    assert slept == [2.0, 4.0]

    # The feed changes; the items already landed are not fetched again, and keep their text.
    d = STORIES[13]
    feed.change(lambda: rss([(a, server.url("/news/a")), (d, None)]))
    clock.now += EVERY + 1
    (again,) = poller(store, clock).poll_due()
    assert again.new_items == 1 and again.pages_fetched == 0
    assert server.count("/news/a") == 1
    assert last_paragraph[:80] in {x.title: x.text for x in store.iter_articles()}[a.title]


# -- private addresses and bad input -------------------------------------------------------


def test_private_urls_are_refused_without_the_opt_in(server: FeedServer, store: Store):
    server.routes["/rss"] = Conditional(lambda: rss([(STORIES[0], None)]))
    url = server.url("/rss")
    with pytest.raises(
        FeedError, match="127.0.0.1 is a loopback address.*AKHBAR_ALLOW_PRIVATE_URLS"
    ):
        check_feed_url(url, Fetcher())
    assert check_feed_url(f"  {url} ", fetcher()) == url
    # Cloud metadata stays refused even with the opt-in.
    with pytest.raises(FeedError, match="metadata"):
        check_feed_url("http://169.254.169.254/latest/", fetcher())
    for bad in (
        "",
        "ftp://example.org/feed",
        "file:///etc/passwd",
        "http:///nohost",
        "http://[",
        "http://example.org/a b",
        "http://example.org/\udcff",  # an undecodable byte from the command line
        "x" * 3000,
    ):
        with pytest.raises(FeedError):
            check_feed_url(bad, fetcher())

    # A loopback feed stored anyway (say, before the opt-in was turned off) is not fetched.
    clock = Clock()
    subscribe(store, url, clock)
    p = Poller(store, Fetcher(), PollerOptions(jitter=0.0), clock=clock)
    (result,) = p.poll_due()
    assert result.outcome == "error" and "AKHBAR_ALLOW_PRIVATE_URLS" in (result.error or "")
    assert server.hits == []


def test_intervals_are_read_with_their_unit():
    assert parse_every("15m") == 900 and parse_every(" 2h ") == 7200 and parse_every("1d") == 86400
    assert parse_every("90s") == 90 and parse_every("1.5h") == 5400
    for bad in ("15", "m", "15 minutes", "-5m", "30s", "8d", ""):
        with pytest.raises(FeedError):
            parse_every(bad)
    assert [format_every(s) for s in (900, 7200, 86400, 90)] == ["15m", "2h", "1d", "90s"]
