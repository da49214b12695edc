"""The metrics of one server: a registry of its own, and ``/metrics`` over HTTP.

    ServerMetrics.registry    CollectorRegistry, one per server (tests run several)
      grpc_server_started_total{grpc_type,grpc_service,grpc_method}             ┐ recorded by
      grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}   │ the interceptor
      grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}          │
      segmentd_member_rows_streamed_total                                       ┘
      segmentd_cache_*{cache}, segmentd_db_pool_connections_*   read on scrape (collectors)
      process_*, python_*                                       prometheus-client's own

The names and labels are those of the Prometheus gRPC interceptors (go-grpc-prometheus,
py-grpc-prometheus), so the usual gRPC dashboards and alerts work unchanged.
"""

from __future__ import annotations

import asyncio
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from segmentd.observability.collectors import CacheCollector, CacheStatistics, PoolCollector

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")

#: Seconds. The hot path answers in about a millisecond, so the buckets start well below
#: prometheus-client's default 5 ms; the top ones catch member listings and statistics.
HANDLING_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class ServerMetrics:
    """Every metric one server exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            GRPC_LABELS,
            registry=self.registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status.",
            (*GRPC_LABELS, "grpc_code"),
            registry=self.registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status, in seconds.",
            GRPC_LABELS,
            buckets=HANDLING_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.member_rows_streamed = Counter(
            "segmentd_member_rows_streamed_total",
            "Member user ids sent by ListSegmentMembers.",
            registry=self.registry,
        )
        self._caches = CacheCollector()
        self._pool = PoolCollector()
        for collector in (self._caches, self._pool):
            self.registry.register(collector)
        _register_process_collectors(self.registry)

    def watch_cache(self, name: str, cache: CacheStatistics) -> None:
        """Export ``cache``'s statistics under ``segmentd_cache_*{cache="<name>"}``."""
        self._caches.watch(name, cache)

    def watch_pool(self, pool: object) -> None:
        """Export the connections ``pool`` (a SQLAlchemy pool) has in use and idle."""
        self._pool.watch(pool)


def _register_process_collectors(registry: CollectorRegistry) -> None:
    # The same collectors prometheus-client puts in its global registry (memory, CPU,
    # open files, GC), made afresh for this one.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class MetricsEndpoint:
    """``/metrics`` over HTTP on a thread of its own, for one registry.

    Args:
        registry: what to expose.
        host: the address to listen on (``[::]`` and other bracketed forms are accepted).
        port: the port; 0 picks a free one (read it back from :attr:`port`).
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        address = host.strip("[]")
        self._httpd: WSGIServer
        try:
            self._httpd, _ = start_http_server(port, addr=address, registry=registry)
        except OSError:
            # As gRPC does for [::]: on a machine without IPv6, every IPv4 address instead
            # (a port already taken fails again, with its own error).
            if address != "::":
                raise
            self._httpd, _ = start_http_server(port, addr="0.0.0.0", registry=registry)

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self._httpd.server_port)

    async def close(self) -> None:
        """Stop listening (``shutdown`` waits for the serving loop, so not on the event loop)."""
        await asyncio.to_thread(self._httpd.shutdown)
        self._httpd.server_close()
