"""Prometheus collectors reading live values at scrape time: caches and the database pool.

Each scrape reads the objects' own counters, so nothing on the request path touches a
metric for them, and a cache is registered with one line::

    caches.watch("profiles", profile_cache)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class CacheStatistics(Protocol):
    """What a cache exposes for its metrics (counters since the cache was made)."""

    @property
    def hits(self) -> int:
        """Reads answered from the cache."""
        ...

    @property
    def misses(self) -> int:
        """Reads that found nothing (absent or expired)."""
        ...

    @property
    def evictions(self) -> int:
        """Entries dropped to make room (not expiries, not invalidations)."""
        ...

    @property
    def maxsize(self) -> float:
        """The most entries the cache holds."""
        ...

    def __len__(self) -> int: ...


@runtime_checkable
class ConnectionPool(Protocol):
    """What a SQLAlchemy pool exposes for its metrics (``QueuePool`` has both)."""

    def checkedout(self) -> int:
        """Connections lent out right now."""
        ...

    def checkedin(self) -> int:
        """Open connections waiting in the pool."""
        ...


class CacheCollector(Collector):
    """``segmentd_cache_*{cache}``: hits, misses, evictions, entries and capacity per cache."""

    def __init__(self) -> None:
        self._caches: dict[str, CacheStatistics] = {}

    def watch(self, name: str, cache: CacheStatistics) -> None:
        """Report ``cache`` under the label ``cache=name`` from now on."""
        self._caches[name] = cache

    def collect(self) -> Iterator[Metric]:
        """Yield one family per statistic, one sample per watched cache."""
        hits = CounterMetricFamily("segmentd_cache_hits", "Reads answered from the cache.", labels=["cache"])
        misses = CounterMetricFamily(
            "segmentd_cache_misses", "Reads that found nothing in the cache.", labels=["cache"]
        )
        evictions = CounterMetricFamily(
            "segmentd_cache_evictions", "Entries evicted to make room.", labels=["cache"]
        )
        size = GaugeMetricFamily("segmentd_cache_size", "Entries in the cache.", labels=["cache"])
        capacity = GaugeMetricFamily(
            "segmentd_cache_max_size", "Most entries the cache holds.", labels=["cache"]
        )
        for name, cache in self._caches.items():
            hits.add_metric([name], cache.hits)
            misses.add_metric([name], cache.misses)
            evictions.add_metric([name], cache.evictions)
            size.add_metric([name], len(cache))
            capacity.add_metric([name], cache.maxsize)
        yield from (hits, misses, evictions, size, capacity)


class PoolCollector(Collector):
    """``segmentd_db_pool_connections_{in_use,idle}``: the database connection pool.

    A pool without a fixed set of connections (SQLite's in some SQLAlchemy versions) has
    no such counts; then nothing is reported.
    """

    def __init__(self) -> None:
        self._pool: ConnectionPool | None = None

    def watch(self, pool: object) -> None:
        """Report ``pool`` from now on, if it counts its connections."""
        if isinstance(pool, ConnectionPool):
            self._pool = pool

    def collect(self) -> Iterator[Metric]:
        """Yield the connections in use and idle, when a pool is watched."""
        if self._pool is None:
            return
        yield GaugeMetricFamily(
            "segmentd_db_pool_connections_in_use",
            "Database connections lent out by the pool.",
            value=self._pool.checkedout(),
        )
        yield GaugeMetricFamily(
            "segmentd_db_pool_connections_idle",
            "Open database connections waiting in the pool.",
            value=self._pool.checkedin(),
        )
