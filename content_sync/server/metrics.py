"""``GET /metrics``: the server's own figures in Prometheus's text format.

A registry per app (several apps in one test process do not mix), from the
``prometheus_client`` library. What a technician watching a province needs to see
a problem coming: how many boards hold a long-poll, how long the store's commits take
and how many writes each carries, how long a heartbeat takes inside the server, what
was refused and why.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Live(Collector):
    """Gauges read when scraped (no bookkeeping on the request path)."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, float]]]) -> None:
        self.read = read

    def collect(self) -> Any:
        for name, (doc, value) in self.read().items():
            yield GaugeMetricFamily(name, doc, value=value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.handled = Histogram(
            "eboard_source_handled_seconds", "Time inside the server per request kind",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.commit = Histogram(
            "eboard_source_store_commit_seconds", "One group commit of the store",
            buckets=LATENCY_BUCKETS, registry=r)
        self.writes = Counter("eboard_source_store_writes", "Writes committed", registry=r)
        self.gc = Histogram(
            "eboard_source_gc_seconds", "Garbage collections of the server process (the "
            "event loop stands still meanwhile)", ["generation"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.heartbeat = self.handled.labels("heartbeat")
        self.plays = self.handled.labels("plays")
        self.push = self.handled.labels("manifest_put")

    def watch_gc(self) -> None:
        """Time every collection (``gc.callbacks``); undone by ``unwatch_gc``."""
        started: list[float] = []

        def timing(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                self.gc.labels(str(info.get("generation", "?"))).observe(
                    time.perf_counter() - started[0])
        self._gc_timing = timing
        gc.callbacks.append(timing)

    def unwatch_gc(self) -> None:
        with contextlib.suppress(AttributeError, ValueError):
            gc.callbacks.remove(self._gc_timing)

    def committed(self, seconds: float, writes: int) -> None:
        """Called by the store's writer thread after each group commit."""
        self.commit.observe(seconds)
        self.writes.inc(writes)

    def live(self, read: Callable[[], dict[str, tuple[str, float]]]) -> None:
        self.registry.register(_Live(read))

    async def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)
