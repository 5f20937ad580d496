"""``GET /metrics``: what the server did, in Prometheus' text format (``prometheus-client``).

Requests and texts are counted by route and status, request latency and batch size and run time are
histograms, and the queue and the requests in progress are gauges. A path the server does not serve
counts as route ``other``, so that scanners cannot grow the number of series.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Metrics:
    """The server's metrics, in a registry of their own (with the process' CPU and memory)."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            ProcessCollector,
            disable_created_metrics,
        )

        disable_created_metrics()  # no `_created` series beside every counter and histogram: noise to a dashboard
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        seconds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
        kw = {"registry": self.registry, "namespace": "imdb_serve"}
        self.requests = Counter("requests", "HTTP requests answered, by route and status", ["route", "status"], **kw)
        self.texts = Counter("texts", "texts in the requests answered, by route and status", ["route", "status"], **kw)
        self.latency = Histogram(
            "request_duration_seconds", "time from a request's arrival to its answer, by route", ["route"],
            buckets=seconds, **kw,
        )  # fmt: skip
        self.in_progress = Gauge("requests_in_progress", "requests being answered, by route", ["route"], **kw)
        sizes = (1, 2, 4, 8, 16, 32, 64, 128, 256)
        self.batch_size = Histogram("batch_size", "texts per batch run", buckets=sizes, **kw)
        self.batch_seconds = Histogram("batch_duration_seconds", "time one batch took to run", buckets=seconds, **kw)
        self.queue = Gauge("queue_texts", "texts waiting for a batch", **kw)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """The queue gauge reads ``depth()`` at every scrape."""
        self.queue.set_function(depth)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics as Prometheus scrapes them, and their content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware that counts every request, whatever answers it (a route, an error, another middleware).

    A route that took texts says how many in ``request.state.texts``.
    """

    def __init__(self, app, metrics: Metrics, routes: frozenset[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        state = scope.setdefault("state", {})
        status = 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        self.metrics.in_progress.labels(route).inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_progress.labels(route).dec()
            self.metrics.requests.labels(route, str(status)).inc()
            if state.get("texts"):
                self.metrics.texts.labels(route, str(status)).inc(state["texts"])
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
