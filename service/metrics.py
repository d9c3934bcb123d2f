"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from akhbar.corpus.models import IngestReport
from akhbar.corpus.poller import PollResult
from akhbar.service.schemas import AskResponse

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FEED_LAG_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            "akhbar_request_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.questions = Counter(
            "akhbar_questions",
            "Questions answered, by detected language.",
            ["language"],
            registry=r,
        )
        self.answers = Counter(
            "akhbar_answers",
            "Questions by whether the corpus held an answer.",
            ["answerable"],
            registry=r,
        )
        self.index_chunks = Gauge(
            "akhbar_index_chunks", "Chunks in the served index version.", registry=r
        )
        self.index_info = Gauge(
            "akhbar_index_info", "The served index version (value 1).", ["version"], registry=r
        )
        self.ingest_items = Counter(
            "akhbar_ingest_items",
            "Items ingested over HTTP, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.rebuild_jobs = Counter(
            "akhbar_rebuild_jobs",
            "Index rebuild jobs, by status reached.",
            ["status"],
            registry=r,
        )

        self.feed_polls = Counter(
            "akhbar_feed_polls",
            "Feed polls, by outcome (ok, not_modified, error, timeout, invalid).",
            ["outcome"],
            registry=r,
        )
        self.feed_items = Counter(
            "akhbar_feed_items",
            "Items read from feeds and landed, by ingest outcome.",
            ["outcome"],
            registry=r,
        )
        self.feed_lag = Histogram(
            "akhbar_feed_lag_seconds",
            "How long after it was due a feed's poll started.",
            buckets=_FEED_LAG_BUCKETS,
            registry=r,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(route, method, str(status)).observe(seconds)

    def observe_answer(self, response: AskResponse) -> None:
        self.questions.labels(response.question_language).inc()
        self.answers.labels("true" if response.answerable else "false").inc()

    def observe_ingest(self, report: IngestReport) -> None:
        for outcome in ("stored", "duplicate", "unchanged", "rejected"):
            self.ingest_items.labels(outcome).inc(getattr(report, outcome))

    def observe_feed_poll(self, result: PollResult) -> None:
        self.feed_polls.labels(result.outcome).inc()
        self.feed_lag.observe(result.lag_s)
        if result.report is not None:
            for outcome in ("stored", "duplicate", "unchanged", "rejected"):
                self.feed_items.labels(outcome).inc(getattr(result.report, outcome))

    def set_index(self, version: str | None, chunks: int) -> None:
        # Only the version served now is reported, so old versions do not linger as series.
        self.index_info.clear()
        if version is not None:
            self.index_info.labels(version).set(1)
        self.index_chunks.set(chunks)

    def render(self) -> bytes:
        return generate_latest(self.registry)
