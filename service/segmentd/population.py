"""Population statistics (percentile thresholds), computed by the database and cached.

A threshold scans the population, so it is computed once for all callers and reused for
``ttl`` seconds by design. When it is older than that, callers keep getting it while one
background computation replaces it: no call waits for a scan except the first one ever for a
threshold, or a call that asks for fresh values (``consistency = STRONG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from cachetools import LRUCache

from segmentd.engine.traits import split_path
from segmentd.store.deadlines import detached
from segmentd.store.profiles import ProfileRepository

log = logging.getLogger(__name__)

_Key = tuple[str, float]


class PercentileThresholds:
    """Nearest-rank percentile thresholds of numeric traits over all profiles.

    Membership of percentile segments may lag profile writes by ``ttl`` seconds (plus the time
    of one computation), by design: recomputing a percentile scans the population.

    Args:
        repository: the profile store that computes thresholds.
        ttl: seconds after which a threshold is recomputed in the background.
        timer: clock for the TTL (injectable for tests).
    """

    def __init__(
        self, repository: ProfileRepository, ttl: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._timer = timer
        # (threshold, computed at); bounded because old catalogues' thresholds are never asked again.
        self._thresholds: LRUCache[_Key, tuple[float | None, float]] = LRUCache(maxsize=10_000)
        self._computing: dict[_Key, asyncio.Task[float | None]] = {}

    async def thresholds(self, wanted: Iterable[_Key], *, fresh: bool = False) -> dict[_Key, float | None]:
        """Return the threshold of every ``(attribute, percent)`` in ``wanted``.

        Args:
            wanted: the thresholds to return.
            fresh: compute each one now, for this call, instead of reusing a cached value.
        """
        found: dict[_Key, float | None] = {}
        for key in wanted:
            cached = None if fresh else self._thresholds.get(key)
            if cached is None:
                # Shielded: a caller that gives up must not cancel the computation others wait for.
                found[key] = await (
                    self._compute(key) if fresh else asyncio.shield(self._shared_computation(key))
                )
                continue
            threshold, computed_at = cached
            if self._timer() - computed_at >= self._ttl and key not in self._computing:
                self._shared_computation(key).add_done_callback(_log_failure)
            found[key] = threshold
        return found

    def _shared_computation(self, key: _Key) -> asyncio.Task[float | None]:
        """The one computation of ``key`` in flight, started if there is none."""
        task = self._computing.get(key)
        if task is None:
            # Detached: it serves every caller, so no one caller's deadline may stop it.
            task = self._computing[key] = detached(self._compute(key))
            task.add_done_callback(lambda _task: self._computing.pop(key, None))
        return task

    async def _compute(self, key: _Key) -> float | None:
        attribute, percent = key
        started = self._timer()
        threshold = await self._repository.population_percentile(split_path(attribute), percent)
        self._thresholds[key] = (threshold, started)
        return threshold

    def clear(self) -> None:
        """Forget every threshold."""
        self._thresholds.clear()

    async def close(self) -> None:
        """Cancel the computations in flight (at shutdown)."""
        for task in list(self._computing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _log_failure(task: asyncio.Task[float | None]) -> None:
    """Retrieve a background computation's error (the stale value stays in use meanwhile)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("recomputing a percentile threshold failed: %s", task.exception())
