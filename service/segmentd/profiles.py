"""Profile writes and reads, keeping the profile cache coherent with the store.

    write ──> store ──> invalidate(user) ──> acknowledge            (PostgreSQL, SQLite's thread)
    write ──> store + reread(user) ──commit──> replace(user) ──> acknowledge   (SQLite inline)

A write drops its users' cache entries, so the next read is a miss. On SQLite a point write
commits inline on the event loop (``store.sqlite_inline``); there, a user the cache holds is
read again inside the write's own transaction, by the statement of a cache miss, and the
entry replaced by what it read in the same step of the loop as the commit: the cache follows
the commits in their order and holds exactly what a miss would read, and the next read is a
hit. Anything else (PostgreSQL, where other connections commit in between; a write SQLite
sent to its thread because another process held the lock) invalidates as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from segmentd.cache import GenerationalCache
from segmentd.engine.rules import JsonValue
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event, Profile, Reread, SnapshotShape, UserSnapshot

#: Users of one write read again for the cache at most; the others are invalidated.
WRITE_THROUGH_USERS: Final = 8


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

    @classmethod
    def from_snapshot(
        cls,
        snapshot: UserSnapshot,
        windows: frozenset[tuple[str, int]],
        lists: frozenset[str],
        now: datetime,
        read_at: datetime,
    ) -> CachedUser:
        """The entry of a snapshot read with ``windows`` and ``lists``, counted at ``now``."""
        return cls(
            snapshot.profile,
            snapshot.event_counts,
            windows,
            now.date(),
            read_at,
            snapshot.catalogue_version,
            checked_lists=lists,
            lists=snapshot.lists,
        )


ProfileCache = GenerationalCache[str, CachedUser]


def _ignore_version(_version: int, _read_at: datetime) -> None:
    return None


class _WriteThrough:
    """One write's cached users: replaced by what the write read of them, or else invalidated."""

    def __init__(
        self, cache: ProfileCache, observe_version: Callable[[int, datetime], object], users: Collection[str]
    ) -> None:
        self._cache = cache
        self._observe_version = observe_version
        self._users = users
        self._written: set[str] = set()
        shapes: dict[str, SnapshotShape] = {}
        for user_id in users:
            cached = cache.peek(user_id)
            if cached is not None and len(shapes) < WRITE_THROUGH_USERS:
                shapes[user_id] = (cached.windows, cached.checked_lists)
        self.reread = Reread(shapes, self._replace)

    def _replace(self, snapshots: Mapping[str, UserSnapshot], now: datetime) -> None:
        # Called in the same step of the event loop as the commit: no other write or fill of
        # this process can come between them.
        for user_id, snapshot in snapshots.items():
            windows, lists = self.reread.shapes[user_id]
            self._cache.replace(user_id, CachedUser.from_snapshot(snapshot, windows, lists, now, now))
            self._written.add(user_id)
            self._observe_version(snapshot.catalogue_version, now)

    def invalidate_the_others(self) -> None:
        """Invalidate every user of the write not replaced (also when its outcome is unknown)."""
        for user_id in self._users:
            if user_id not in self._written:
                self._cache.invalidate(user_id)


class ProfileDirectory:
    """Writes profiles and events, bringing the cache up to date before acknowledging them.

    Args:
        repository: where profiles and events are stored.
        cache: the profile cache shared with evaluation.
        observe_version: told the catalogue version each write-through read, as a cache
            miss tells it (``SegmentCatalog.observe_version``).
    """

    def __init__(
        self,
        repository: ProfileRepository,
        cache: ProfileCache,
        observe_version: Callable[[int, datetime], object] = _ignore_version,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._observe_version = observe_version
        self._writes_through = repository.rereads_commit_inline

    def _write_through(self, users: Collection[str]) -> _WriteThrough | None:
        if not self._writes_through:
            return None
        return _WriteThrough(self._cache, self._observe_version, users)

    async def upsert(self, user_id: str, traits: Mapping[str, JsonValue], *, replace: bool) -> Profile:
        """Merge ``traits`` into the profile (or replace them all), creating it if needed."""
        through = self._write_through((user_id,))
        try:
            return await self._repository.upsert(
                user_id, dict(traits), replace=replace, reread=None if through is None else through.reread
            )
        finally:
            # Invalidate even when the outcome is unknown (e.g. a timeout after commit).
            if through is None:
                self._cache.invalidate(user_id)
            else:
                through.invalidate_the_others()

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
        users = {event.user_id for event in events}
        through = self._write_through(users)
        try:
            return await self._repository.record_events(
                events, reread=None if through is None else through.reread
            )
        finally:
            if through is None:
                for user_id in users:
                    self._cache.invalidate(user_id)
            else:
                through.invalidate_the_others()
