"""Bounded in-process caches whose fills can never bring back a value older than a write.

    get(key) ──hit──> value
       └─miss─> token = cache.generation ─> read the store ─> fill(key, value, token)
    write ─> store ─> invalidate(key) ─> acknowledge          (read-your-writes)
    write ─> store + read back ─> replace(key, value) ─> acknowledge   (write-through)

A read that misses goes to the database and then fills the cache. A write that lands between
that read and the fill would otherwise be overwritten by the older value, so every
invalidation takes the next number of one sequence and the cache remembers, per key, the
number of its latest invalidation. A fill carries the sequence number seen before its read and
is refused if *that key* was invalidated since: a write to one user never costs another
user's fill, however many writes stream in.

A write that read the new value back in its own transaction may ``replace`` the entry instead:
an invalidation followed by a store of that value, in one step. Fills begun before it are
refused as after any invalidation, so only the replacing value, as new as the write, stands.
The caller must order its replacements as its commits (``segmentd.profiles``).

The memory of invalidations is bounded: when the oldest one is forgotten, its number becomes
a floor below which every fill is refused. A fill is refused that way only if more than
``remembered_invalidations`` writes happened during its one read, which is conservative
(never stale) and, at any realistic write rate, never happens.

Entries are evicted least recently used first at ``maxsize``. An optional TTL is the safety
net for changes nobody told this process about (see the README, "Caching and consistency"),
not a refresh rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Invalidations remembered per key before the oldest is folded into the floor.
DEFAULT_REMEMBERED_INVALIDATIONS = 65_536


class _CountingTTL(TTLCache[K, V]):
    """A TTL cache that counts what it evicts to stay within ``maxsize`` (expiry is not counted)."""

    evictions = 0

    def popitem(self) -> tuple[K, V]:
        self.evictions += 1
        return super().popitem()


class GenerationalCache(Generic[K, V]):
    """An LRU cache, with an optional TTL, whose fills are refused after a write to their key.

    Args:
        maxsize: most entries kept; the least recently used one is evicted first.
        ttl: seconds an entry is trusted; ``None`` keeps entries until evicted or invalidated,
            and ``0`` caches nothing.
        timer: clock used for expiry (injectable for tests).
        remembered_invalidations: how many per-key invalidations are remembered.

    Attributes:
        hits: lookups answered from the cache, since start.
        misses: lookups that found nothing (or an expired entry).
    """

    def __init__(
        self,
        maxsize: int,
        ttl: float | None,
        timer: Callable[[], float] = time.monotonic,
        remembered_invalidations: int = DEFAULT_REMEMBERED_INVALIDATIONS,
    ) -> None:
        # An infinite TTL never expires: one cache class serves both cases.
        self._entries: _CountingTTL[K, V] = _CountingTTL(
            maxsize=maxsize, ttl=math.inf if ttl is None else ttl, timer=timer
        )
        self._caches_nothing = ttl is not None and ttl <= 0
        self._sequence = 0
        self._floor = 0
        # Insertion order is invalidation order: the first entry is the oldest one.
        self._invalidated_at: dict[K, int] = {}
        self._remembered = remembered_invalidations
        self.hits = 0
        self.misses = 0

    @property
    def generation(self) -> int:
        """Take this before reading the database; pass it to :meth:`fill`."""
        return self._sequence

    @property
    def maxsize(self) -> float:
        """The most entries the cache holds."""
        return self._entries.maxsize

    @property
    def evictions(self) -> int:
        """Entries evicted to stay within ``maxsize``, since start."""
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

    def peek(self, key: K) -> V | None:
        """Return the cached value, or ``None``, without counting a hit or a miss."""
        return self._entries.get(key)

    def fill(self, key: K, value: V, generation: int) -> bool:
        """Store ``value`` unless ``key`` was invalidated since ``generation`` was read.

        Returns:
            Whether the value was stored.
        """
        if self._caches_nothing or generation < self._floor or self._invalidated_at.get(key, -1) > generation:
            return False
        self._entries[key] = value
        return True

    def invalidate(self, key: K) -> None:
        """Drop ``key`` and refuse its fills that started before now."""
        self._sequence += 1
        self._invalidated_at.pop(key, None)
        self._invalidated_at[key] = self._sequence
        if len(self._invalidated_at) > self._remembered:
            oldest = next(iter(self._invalidated_at))
            self._floor = self._invalidated_at.pop(oldest)
        self._entries.pop(key, None)

    def replace(self, key: K, value: V) -> None:
        """Invalidate ``key``, then store ``value``: a value known to be as new as the last write."""
        self.invalidate(key)
        if not self._caches_nothing:
            self._entries[key] = value

    def clear(self) -> None:
        """Drop everything and refuse every fill that started before now."""
        self._sequence += 1
        self._floor = self._sequence
        self._invalidated_at.clear()
        self._entries.clear()
