"""The counters a cache keeps for its metrics, and the collector that reads them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from segmentd.cache import GenerationalCache
from segmentd.observability.collectors import CacheCollector


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_generational_cache__gets__hits_and_misses_counted():
    cache: GenerationalCache[str, int] = GenerationalCache(maxsize=10, ttl=60)
    cache.fill("a", 1, cache.generation)

    assert [cache.get("a"), cache.get("a"), cache.get("b")] == [1, 1, None]
    assert (cache.hits, cache.misses) == (2, 1)


def test_generational_cache__full__lru_eviction_counted_not_expiry_nor_invalidation():
    # Given: a cache of two entries on a clock of our own
    clock = _Clock()
    cache: GenerationalCache[str, int] = GenerationalCache(maxsize=2, ttl=10, timer=clock)
    for key in ("a", "b", "c"):  # "a" is evicted to make room for "c"
        cache.fill(key, 1, cache.generation)
    assert cache.evictions == 1

    # When: the rest expires, one entry is invalidated, everything is cleared
    clock.now = 11
    assert cache.get("b") is None
    cache.fill("d", 1, cache.generation)
    cache.invalidate("d")
    cache.fill("e", 1, cache.generation)
    cache.clear()

    # Then: none of that was an eviction
    assert cache.evictions == 1
    assert len(cache) == 0


def test_cache_collector__watched_caches__one_sample_per_cache():
    registry = CollectorRegistry()
    collector = CacheCollector()
    registry.register(collector)
    profiles: GenerationalCache[str, int] = GenerationalCache(maxsize=5, ttl=60)
    other: GenerationalCache[str, int] = GenerationalCache(maxsize=7, ttl=60)
    collector.watch("profiles", profiles)
    collector.watch("other", other)
    profiles.fill("a", 1, profiles.generation)
    profiles.get("a")
    other.get("x")

    def value(name: str, cache: str) -> float | None:
        return registry.get_sample_value(name, {"cache": cache})

    assert value("segmentd_cache_hits_total", "profiles") == 1
    assert value("segmentd_cache_misses_total", "other") == 1
    assert value("segmentd_cache_size", "profiles") == 1
    assert value("segmentd_cache_max_size", "other") == 7
    assert value("segmentd_cache_evictions_total", "profiles") == 0
