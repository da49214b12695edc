"""Bounded in-process caches: profiles, the compiled segment set, percentile thresholds.

Every cache is a cachetools ``TTLCache`` (LRU eviction at ``maxsize``, expiry after ``ttl``).
The TTL bounds how long a write made elsewhere (another replica, or SQL run directly
against the database) can go unseen; writes made through this process invalidate the
affected entries before they are acknowledged.

A read that misses goes to the database and then fills the cache. A write that lands
between that read and the fill would otherwise be overwritten by the older value, so each
cache keeps a *generation* counter, bumped by every invalidation: a fill carries the
generation seen before its read and is dropped if an invalidation happened since.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _EvictionCountingCache(TTLCache[K, V]):
    """A ``TTLCache`` counting LRU evictions (cachetools evicts through ``popitem`` only)."""

    evictions = 0

    def popitem(self) -> tuple[K, V]:
        self.evictions += 1
        return super().popitem()


class GenerationalCache(Generic[K, V]):
    """An LRU+TTL cache whose fills are refused after a concurrent invalidation.

    Args:
        maxsize: most entries kept; the least recently used one is evicted first.
        ttl: seconds an entry is trusted.
        timer: clock used for expiry (injectable for tests).
    """

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._entries: _EvictionCountingCache[K, V] = _EvictionCountingCache(maxsize, ttl, timer)
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def generation(self) -> int:
        """Take this before reading the database; pass it to :meth:`fill`."""
        return self._generation

    @property
    def maxsize(self) -> float:
        """The most entries the cache holds."""
        return self._entries.maxsize

    @property
    def evictions(self) -> int:
        """Entries evicted to make room since the cache was made (expiries are not counted)."""
        return self._entries.evictions

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """Return the cached value, or ``None`` on a miss or after expiry."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def fill(self, key: K, value: V, generation: int) -> None:
        """Store ``value`` unless something was invalidated since ``generation`` was read."""
        if generation == self._generation:
            self._entries[key] = value

    def invalidate(self, key: K) -> None:
        """Drop ``key`` and refuse fills that started before now."""
        self._generation += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop everything and refuse fills that started before now."""
        self._generation += 1
        self._entries.clear()
