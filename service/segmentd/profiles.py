"""Profile writes and reads, keeping the profile cache coherent with the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from segmentd.cache import GenerationalCache
from segmentd.engine.rules import JsonValue
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event, Profile


@dataclass(frozen=True, slots=True)
class CachedVerdict:
    """The segments a cached profile is in, and for which catalogue and time span that holds.

    Attributes:
        catalogue: the catalogue it was computed with (compared by identity).
        computed_at_us: the ``now`` it was computed at, in µs since the epoch.
        valid_until_us: the last instant it still holds (``segmentd.engine.expiry``).
        segments: the names of the segments, sorted.
    """

    catalogue: object
    computed_at_us: int
    valid_until_us: int
    segments: list[str]

    def holds(self, catalogue: object, now_us: int) -> bool:
        """Tell whether this verdict is the one ``catalogue`` would give at ``now_us``."""
        return catalogue is self.catalogue and self.computed_at_us <= now_us <= self.valid_until_us


@dataclass(slots=True)
class CachedUser:
    """A profile as read from the store, with the event counts and list memberships prefetched with it.

    Attributes:
        profile: the stored profile.
        event_counts: ``(event name, within_days) -> count`` for ``windows``.
        windows: the event windows counted; a catalogue needing others is a miss.
        day: the UTC day the windows were counted on; windows move at midnight.
        read_at: when the read began: every write committed before it is in this value.
        catalogue_version: the segment catalogue's version at the same read.
        verdict: the last verdict of every segment for this profile, if one was kept.
        checked_lists: the user lists whose membership was read with the profile; a
            catalogue testing others is a miss. A change to a list's members invalidates
            exactly the users whose membership moved (``segmentd.user_lists``).
        lists: those of ``checked_lists`` the user is a member of.
    """

    profile: Profile
    event_counts: Mapping[tuple[str, int], int]
    windows: frozenset[tuple[str, int]]
    day: date
    read_at: datetime
    catalogue_version: int
    verdict: CachedVerdict | None = field(default=None, compare=False)
    checked_lists: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()


ProfileCache = GenerationalCache[str, CachedUser]


class ProfileDirectory:
    """Writes profiles and events, invalidating the cache before acknowledging them.

    Args:
        repository: where profiles and events are stored.
        cache: the profile cache shared with evaluation.
    """

    def __init__(self, repository: ProfileRepository, cache: ProfileCache) -> None:
        self._repository = repository
        self._cache = cache

    async def upsert(self, user_id: str, traits: Mapping[str, JsonValue], *, replace: bool) -> Profile:
        """Merge ``traits`` into the profile (or replace them all), creating it if needed."""
        try:
            return await self._repository.upsert(user_id, dict(traits), replace=replace)
        finally:
            # Invalidate even when the outcome is unknown (e.g. a timeout after commit).
            self._cache.invalidate(user_id)

    async def get(self, user_id: str) -> Profile:
        """Return the stored profile of ``user_id``."""
        return await self._repository.get(user_id)

    async def delete(self, user_id: str) -> None:
        """Erase the profile of ``user_id`` and all its events."""
        try:
            await self._repository.delete(user_id)
        finally:
            self._cache.invalidate(user_id)

    async def record_events(self, events: Sequence[Event]) -> int:
        """Add ``events`` to the per-day counts; return how many were recorded."""
        try:
            return await self._repository.record_events(events)
        finally:
            for user_id in {event.user_id for event in events}:
                self._cache.invalidate(user_id)
