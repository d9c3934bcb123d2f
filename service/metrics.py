"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from akhbar.corpus.models import IngestReport
from akhbar.corpus.poller import PollResult
from akhbar.index.base import DeltaStatus
from akhbar.service.schemas import AskResponse

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FEED_LAG_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
_MERGE_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


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

        # The local backend's delta (articles written since the served version was built).
        self.delta_chunks = Gauge(
            "akhbar_index_delta_chunks",
            "Passages written into the served version's delta (a rewrite counts again).",
            registry=r,
        )
        self.delta_segments = Gauge(
            "akhbar_index_delta_segments",
            "Writes (segment files) in the served version's delta.",
            registry=r,
        )
        self.delta_age = Gauge(
            "akhbar_index_delta_age_seconds",
            "Age of the delta's oldest write (0 for an empty delta).",
            registry=r,
        )
        self.delta_behind = Gauge(
            "akhbar_index_delta_behind_changes",
            "Article writes the store committed that the delta has not read yet.",
            registry=r,
        )
        self.catch_ups = Counter(
            "akhbar_index_catch_ups",
            "Catch-ups of the delta with the store that read something, by outcome "
            "(indexed, failed).",
            ["outcome"],
            registry=r,
        )
        self.catch_up_seconds = Histogram(
            "akhbar_index_catch_up_seconds",
            "Time to read, encode and publish what the store committed (catch-ups that "
            "indexed something).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.merges = Counter(
            "akhbar_index_merges",
            "Background merges of the delta into a new version, by outcome (merged, "
            "empty, skipped: another process builds, failed).",
            ["outcome"],
            registry=r,
        )
        self.merge_seconds = Histogram(
            "akhbar_index_merge_seconds",
            "Duration of background merges that made a new version.",
            buckets=_MERGE_BUCKETS,
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

    def observe_catch_up(self, outcome: str, seconds: float, articles: int) -> None:
        self.catch_ups.labels(outcome).inc()
        if outcome == "indexed":
            self.catch_up_seconds.observe(seconds)

    def observe_merge(self, outcome: str, seconds: float) -> None:
        self.merges.labels(outcome).inc()
        if outcome == "merged":
            self.merge_seconds.observe(seconds)

    def set_delta(self, status: DeltaStatus | None) -> None:
        """The served delta's gauges (all 0 for a backend that keeps none)."""
        self.delta_chunks.set(status.chunks if status else 0)
        self.delta_segments.set(status.segments if status else 0)
        self.delta_age.set(status.age_s if status else 0.0)
        self.delta_behind.set(status.behind or 0 if status else 0)

    def set_index(self, version: str | None, chunks: int) -> None:
        # Only the version served now is reported, so old versions do not linger as series.
        self.index_info.clear()
        if version is not None:
            self.index_info.labels(version).set(1)
        self.index_chunks.set(chunks)

    def render(self) -> bytes:
        return generate_latest(self.registry)
