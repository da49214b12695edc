"""Population statistics (percentile thresholds), computed by the database and cached."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from cachetools import TTLCache

from segmentd.engine.traits import split_path
from segmentd.store.profiles import ProfileRepository

_UNKNOWN = object()


class PercentileThresholds:
    """Nearest-rank percentile thresholds of numeric traits over all profiles.

    A threshold is reused for ``ttl`` seconds: membership of percentile segments may lag
    profile writes by that much, by design (recomputing a percentile scans the population).

    Args:
        repository: the profile store that computes thresholds.
        ttl: seconds a threshold is reused.
        timer: clock for the TTL (injectable for tests).
    """

    def __init__(
        self, repository: ProfileRepository, ttl: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._repository = repository
        self._thresholds: TTLCache[tuple[str, float], float | None] = TTLCache(
            maxsize=10_000, ttl=ttl, timer=timer
        )

    async def thresholds(self, wanted: Iterable[tuple[str, float]]) -> dict[tuple[str, float], float | None]:
        """Return the threshold of every ``(attribute, percent)`` in ``wanted``."""
        found: dict[tuple[str, float], float | None] = {}
        for key in wanted:
            # Read once: an entry can expire between a membership test and a lookup.
            threshold = self._thresholds.get(key, _UNKNOWN)
            if threshold is _UNKNOWN:
                attribute, percent = key
                threshold = await self._repository.population_percentile(split_path(attribute), percent)
                self._thresholds[key] = threshold
            found[key] = threshold  # type: ignore[assignment]
        return found

    def clear(self) -> None:
        """Forget every threshold."""
        self._thresholds.clear()
