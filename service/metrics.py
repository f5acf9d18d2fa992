"""What an operator watches, in Prometheus' terms (prometheus-client).

One `Metrics` per process, each on a registry of its own (no module-level
state; tests build many apps in one process). Labels are route patterns,
outcomes, channels, statuses and provider codes: never anything a citizen
typed. When `PROMETHEUS_MULTIPROC_DIR` is set (several processes behind one
scrape address), prometheus-client keeps the values in files there and
`exposition` adds up every process's.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from service.domain.errors import Refusal

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A method outside these is counted as "other": the label comes from the
# request line, which anyone can fill with any token.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One answered request: when (epoch seconds), method, route pattern, status,
# seconds to answer, request id.
Answer = tuple[float, str, str, int, float, str]
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.http_requests = Counter(
            "mawid_http_requests",
            "HTTP requests answered, by route pattern and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "mawid_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bookings = Counter(
            "mawid_bookings",
            "Booking attempts by outcome: booked or the refusal's code.",
            ["outcome"],
            registry=r,
        )
        self.outbox_rows = Gauge(
            "mawid_outbox_rows",
            "Outbox rows waiting or being sent, by channel and status (read at scrape).",
            ["channel", "status"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.outbox_lag = Gauge(
            "mawid_outbox_lag_seconds",
            "Age of the oldest due pending outbox row (0 when none is due).",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.ready = Gauge(
            "mawid_dependency_up",
            "1 when the part answers this process (what /readyz checks), read at scrape.",
            ["dependency"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.outbox_outcomes = Counter(
            "mawid_outbox_outcomes",
            "What send jobs did with outbox rows, by channel and outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.provider_errors = Counter(
            "mawid_provider_errors",
            "Errors answered by Twilio or the SMTP relay, by channel and code.",
            ["channel", "code"],
            registry=r,
        )
        self.sms_segments = Counter(
            "mawid_sms_segments", "SMS segments sent (what Twilio bills).", registry=r
        )
        self.job_seconds = Histogram(
            "mawid_job_duration_seconds",
            "Worker job durations, by job.",
            ["job"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )

    def count_http(self, answers: Iterable[Answer]) -> None:
        """Count answered requests, a batch at a time (service.web.accesslog):
        each labelled child is added to once per batch, by how many fell in
        each latency bucket, rather than with four locked increments per
        request. The children are kept: labels() looks them up under a lock."""
        tallies: dict[tuple[str, str, int], list[float]] = {}
        for _, method, route, status, seconds, _ in answers:
            if method not in _METHODS:
                method = "other"
            key = (method, route, status)
            tally = tallies.get(key)
            if tally is None:
                # A count per bucket (+Inf last), then the sum of the seconds.
                tally = tallies[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
            # The first bucket whose bound is at least the time: Histogram.observe's.
            tally[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
            tally[-1] += seconds
        for key, tally in tallies.items():
            children = self._http_children.get(key)
            if children is None:
                method, route, status = key
                children = self._http_children[key] = (
                    self.http_requests.labels(method, route, str(status)),
                    self.http_seconds.labels(method, route),
                )
            requests, seconds_child = children
            requests.inc(sum(tally[:-1]))
            # Histogram.observe adds one to a bucket and the time to the sum;
            # its child's values, which in multiprocess mode live in files,
            # take the batch's counts at once.
            for bucket, count in zip(seconds_child._buckets, tally[:-1], strict=True):
                if count:
                    bucket.inc(count)
            seconds_child._sum.inc(tally[-1])

    def exposition(self) -> bytes:
        """The text format of this process's metrics, or of every process's
        in multiprocess mode."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    async def count_booking(self, attempt: Awaitable[T]) -> T:
        """Awaits one booking attempt and counts it: `booked`, or the
        refusal's code (`slot_full`, `already_booked`, `too_late`,
        `rate_limited`, ...)."""
        try:
            booked = await attempt
        except Refusal as refused:
            self.bookings.labels(refused.code).inc()
            raise
        self.bookings.labels("booked").inc()
        return booked


T = TypeVar("T")


def timed_job(
    name: str, job: Callable[..., Awaitable[Any]], metrics_of: Callable[[Any], Metrics]
) -> Callable[..., Awaitable[Any]]:
    """`job` (an arq coroutine taking ctx first) recording its duration."""

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await job(ctx, *args, **kwargs)
        finally:
            metrics_of(ctx).job_seconds.labels(name).observe(time.perf_counter() - started)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = job.__doc__
    return run
