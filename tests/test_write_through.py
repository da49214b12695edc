"""Writes and the profile cache: on SQLite the written users' entries are replaced by what a
miss would read; on PostgreSQL (and when SQLite sends a write to its thread) they are dropped.

Either way, after every write each cached entry equals a fresh read of the store, and every
cached verdict equals a STRONG one.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.engine.codec import rule_from_json
from segmentd.errors import InvalidArgument
from segmentd.evaluation import Evaluator
from segmentd.population import PercentileThresholds
from segmentd.profiles import WRITE_THROUGH_USERS, CachedUser, ProfileCache, ProfileDirectory
from segmentd.segments import SegmentCatalog
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event
from segmentd.store.segments import SegmentRepository
from segmentd.store.user_lists import UserListRepository

MIDNIGHT = datetime(2026, 3, 15, tzinfo=UTC)

SEGMENTS: dict[str, dict[str, Any]] = {
    "free": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
    "promoters": {"condition": {"attribute": "nps", "operator": "GREATER_THAN_OR_EQUALS", "value": 9}},
    "deep": {"condition": {"attribute": "company.size", "operator": "GREATER_THAN", "value": 50}},
    "tagged": {"condition": {"attribute": "tags", "operator": "CONTAINS", "value": "beta"}},
    "recent": {"condition": {"attribute": "last_seen", "operator": "WITHIN_LAST_DAYS", "value": 1}},
    "active": {
        "event": {"name": "login", "operator": "GREATER_THAN_OR_EQUALS", "count": 2, "within_days": 7}
    },
    "ever": {"event": {"name": "invite_sent", "operator": "GREATER_THAN_OR_EQUALS", "count": 1}},
    "ticketed": {"event": {"name": "*", "operator": "GREATER_THAN_OR_EQUALS", "count": 3, "within_days": 30}},
    "new": {
        "event": {"name": "$created", "operator": "GREATER_THAN_OR_EQUALS", "count": 1, "within_days": 3}
    },
    "beta": {"in_list": {"name": "beta-testers"}},
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Service:
    """The domain objects a server wires, on one clock."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.clock = clock
        self.repository = ProfileRepository(sessions, clock=clock)
        self.cache = ProfileCache(100, None)
        self.catalog = SegmentCatalog(SegmentRepository(sessions), check_interval=3600, clock=clock)
        self.evaluator = Evaluator(
            self.catalog, self.repository, self.cache, PercentileThresholds(self.repository, ttl=3600), clock
        )
        self.versions: list[int] = []
        self.directory = ProfileDirectory(self.repository, self.cache, self._observe_version)

    def _observe_version(self, version: int, read_at: datetime) -> None:
        self.versions.append(version)
        self.catalog.observe_version(version, read_at)

    async def assert_cache_matches_the_store(self, users: list[str]) -> None:
        for user_id in users:
            entry = self.cache.peek(user_id)
            if entry is not None:
                # Counted for the day the entry says (an entry of an earlier day is read again).
                on_its_day = datetime.combine(entry.day, time(12), UTC)
                fresh = await self.repository.get_with_event_counts(
                    user_id, entry.windows, on_its_day, entry.checked_lists
                )
                assert (entry.profile, entry.event_counts, entry.lists, entry.catalogue_version) == (
                    fresh.profile,
                    fresh.event_counts,
                    fresh.lists,
                    fresh.catalogue_version,
                ), user_id
            cached = await self.evaluator.evaluate_user(user_id)
            strong = await self.evaluator.evaluate_user(user_id, strong=True)
            assert cached.segments == strong.segments, user_id


@pytest.fixture
def clock() -> Clock:
    return Clock(MIDNIGHT - timedelta(hours=12))


@pytest.fixture
async def service(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, clock: Clock
) -> AsyncIterator[Service]:
    segments = SegmentRepository(sessions)
    for name, rule in SEGMENTS.items():
        if name == "beta":
            await UserListRepository(engine, sessions).create("beta-testers", "")
        await segments.create(name, "", rule_from_json(rule), {})
    yield Service(sessions, clock)


def _writes_through(dialect: str) -> bool:
    return dialect == "sqlite"


async def _cached(service: Service, users: list[str]) -> None:
    for user_id in users:
        await service.evaluator.evaluate_user(user_id)
        assert service.cache.peek(user_id) is not None


def _random_traits(rng: random.Random, now: datetime) -> dict[str, Any]:
    candidates: dict[str, Any] = {
        "plan": rng.choice(["free", "pro", None]),
        "nps": rng.choice([rng.randrange(11), rng.random() * 10, None]),
        "company": rng.choice([{"size": rng.randrange(100)}, {"name": "acme"}, None]),
        "tags": rng.choice([["beta", "x"], ["y"], [], None]),
        "last_seen": rng.choice([(now - timedelta(hours=rng.randrange(48))).isoformat(), "never", None]),
        "note": rng.choice(["é ü ß", "", "\u00e9" * 3, None]),
        "flag": rng.choice([True, False, None]),
    }
    return {key: value for key, value in candidates.items() if rng.random() < 0.5}


@pytest.mark.parametrize("seed", range(4))
async def test_random_writes__every_cached_entry_and_verdict_matches_the_store(
    service: Service, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], dialect: str, seed: int
) -> None:
    # Given: cached users, some in a user list, some with events
    rng = random.Random(seed)
    users = [f"u{index}" for index in range(6)]
    for user_id in users:
        await service.directory.upsert(user_id, _random_traits(rng, service.clock()), replace=False)
    lists = UserListRepository(engine, sessions)

    async def members() -> AsyncIterator[list[str]]:
        yield ["u1", "u3"]

    await lists.change_members("beta-testers", "add", members())
    await _cached(service, users)

    for _step in range(30):
        # When: a random write (merge, replace, events for one or more users) or a read
        user_id = rng.choice(users)
        action = rng.randrange(4)
        if action == 0:
            await service.directory.upsert(user_id, _random_traits(rng, service.clock()), replace=False)
        elif action == 1:
            await service.directory.upsert(user_id, _random_traits(rng, service.clock()), replace=True)
        elif action == 2:
            events = [
                Event(
                    rng.choice(users),
                    rng.choice(["login", "invite_sent", "support_ticket"]),
                    service.clock() - timedelta(days=rng.randrange(40), hours=rng.randrange(24)),
                    rng.randrange(3),
                )
                for _ in range(rng.randrange(1, 4))
            ]
            await service.directory.record_events(events)
        else:
            await service.evaluator.evaluate_user(user_id)
        # Then: a written user stays cached only where the write read it back (SQLite)
        if action < 3:
            written = user_id if action < 2 else events[0].user_id
            assert (service.cache.peek(written) is not None) is _writes_through(dialect)
        # and every cached entry is what a miss would read, every verdict a STRONG one
        service.clock.now += timedelta(minutes=rng.randrange(60))
        await service.assert_cache_matches_the_store(users)


async def test_upsert__cached_user__replaced_by_the_stored_traits_and_hit_next(
    service: Service, dialect: str
) -> None:
    # Given: a cached user
    await service.directory.upsert("u1", {"plan": "free", "nps": 3, "company": {"size": 10}}, replace=False)
    await _cached(service, ["u1"])
    read_before = service.clock()
    service.clock.now += timedelta(seconds=1)
    # When: a merge deletes one key and replaces a nested object whole
    await service.directory.upsert("u1", {"nps": None, "company": {"name": "acme"}}, replace=False)
    service.clock.now += timedelta(seconds=1)
    # Then: the next read has the stored traits, from the cache on SQLite
    misses = service.cache.misses
    verdict = await service.evaluator.evaluate_user("u1")
    assert verdict.segments == ["free", "new"]
    assert (await service.repository.get("u1")).traits == {"plan": "free", "company": {"name": "acme"}}
    assert verdict.freshness is not None
    if _writes_through(dialect):
        assert service.cache.misses == misses
        assert read_before < verdict.freshness.profile_read_at < verdict.evaluated_at
    else:
        assert service.cache.misses == misses + 1
        assert verdict.freshness.profile_read_at == verdict.evaluated_at


async def test_write_through__fill_begun_before_the_write__refused(service: Service, dialect: str) -> None:
    # Given: a miss's read of u1, taken before a write to u1
    await service.directory.upsert("u1", {"plan": "free"}, replace=False)
    await _cached(service, ["u1"])
    entry = service.cache.peek("u1")
    assert entry is not None
    generation = service.cache.generation
    snapshot = await service.repository.get_with_event_counts(
        "u1", entry.windows, service.clock(), entry.checked_lists
    )
    stale = CachedUser.from_snapshot(
        snapshot, entry.windows, entry.checked_lists, service.clock(), service.clock()
    )
    # When: the write lands, then the older read tries to fill
    await service.directory.upsert("u1", {"plan": "pro"}, replace=False)
    # Then: the older read is refused; only the write's value (or nothing) stands
    assert service.cache.fill("u1", stale, generation) is False
    await service.assert_cache_matches_the_store(["u1"])
    assert (await service.evaluator.evaluate_user("u1")).segments == ["new"]


async def test_record_events__many_cached_users__some_replaced_the_others_dropped(
    service: Service, dialect: str
) -> None:
    users = [f"u{index}" for index in range(WRITE_THROUGH_USERS + 3)]
    for user_id in users:
        await service.directory.upsert(user_id, {}, replace=False)
    await _cached(service, users)
    # When: one call records an event for every one of them
    await service.directory.record_events([Event(user_id, "login", service.clock(), 2) for user_id in users])
    # Then: at most WRITE_THROUGH_USERS were read again in the write; all answers are new
    kept = [user_id for user_id in users if service.cache.peek(user_id) is not None]
    assert len(kept) == (WRITE_THROUGH_USERS if _writes_through(dialect) else 0)
    await service.assert_cache_matches_the_store(users)
    for user_id in users:
        assert "active" in (await service.evaluator.evaluate_user(user_id)).segments


async def test_write_through__reads_the_catalogue_version_as_a_miss_does(
    service: Service, dialect: str
) -> None:
    await service.directory.upsert("u1", {}, replace=False)
    await _cached(service, ["u1"])
    version = (await service.catalog.catalogue()).version
    service.versions.clear()
    await service.directory.upsert("u1", {"plan": "free"}, replace=False)
    assert service.versions == ([version] if _writes_through(dialect) else [])


async def test_refused_upsert__entry_dropped_and_store_unchanged(service: Service) -> None:
    await service.directory.upsert("u1", {"plan": "free"}, replace=False)
    await _cached(service, ["u1"])
    with pytest.raises(InvalidArgument):
        await service.directory.upsert("u1", {"padding": "x" * 70_000}, replace=False)
    assert service.cache.peek("u1") is None
    assert (await service.repository.get("u1")).traits == {"plan": "free"}
    assert (await service.evaluator.evaluate_user("u1")).segments == ["free", "new"]


async def test_upsert__sqlite_lock_held_elsewhere__written_in_the_thread_and_entry_dropped(
    service: Service, store_url: str
) -> None:
    # Given: a cached user, and SQLite's write lock held by another process
    if not store_url.startswith("sqlite"):
        pytest.skip("SQLite's point operations")
    await service.directory.upsert("u1", {"plan": "free"}, replace=False)
    await _cached(service, ["u1"])
    holder = sqlite3.connect(Path(str(make_url(store_url).database)), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        upsert = asyncio.ensure_future(service.directory.upsert("u1", {"plan": "pro"}, replace=False))
        await asyncio.sleep(0.2)
        assert not upsert.done()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await upsert
    # Then: that commit was not in a step of the loop: the entry is dropped, the next read misses
    assert service.cache.peek("u1") is None
    assert (await service.evaluator.evaluate_user("u1")).segments == ["new"]


async def test_write_through__before_midnight__windows_counted_again_after_it(service: Service) -> None:
    # Given: one login 7 days before the last second of a day, inside the 7-day window
    service.clock.now = MIDNIGHT - timedelta(seconds=2)
    await service.directory.upsert("u1", {}, replace=False)
    await service.directory.record_events([Event("u1", "login", service.clock.now - timedelta(days=7), 2)])
    await _cached(service, ["u1"])
    # When: a write just before midnight, a read just after
    service.clock.now = MIDNIGHT - timedelta(seconds=1)
    await service.directory.upsert("u1", {"plan": "pro"}, replace=False)
    service.clock.now = MIDNIGHT + timedelta(seconds=1)
    verdict = await service.evaluator.evaluate_user("u1")
    # Then: the window moved with the day: the counts were read again
    assert "active" not in verdict.segments
    assert verdict.freshness is not None and verdict.freshness.profile_read_at == service.clock.now


async def test_write_through__after_midnight__counts_of_the_new_day(service: Service, dialect: str) -> None:
    # Given: an entry read before midnight, with a login that leaves the window at midnight
    service.clock.now = MIDNIGHT - timedelta(seconds=2)
    await service.directory.upsert("u1", {}, replace=False)
    await service.directory.record_events([Event("u1", "login", service.clock.now - timedelta(days=7), 2)])
    await _cached(service, ["u1"])
    assert "active" in (await service.evaluator.evaluate_user("u1")).segments
    # When: the write comes just after midnight
    service.clock.now = MIDNIGHT + timedelta(seconds=1)
    await service.directory.upsert("u1", {"plan": "pro"}, replace=False)
    service.clock.now = MIDNIGHT + timedelta(seconds=2)
    verdict = await service.evaluator.evaluate_user("u1")
    # Then: what it wrote through was counted on the new day
    assert "active" not in verdict.segments
    assert verdict.freshness is not None
    if _writes_through(dialect):
        assert verdict.freshness.profile_read_at == MIDNIGHT + timedelta(seconds=1)


async def test_write_through__kept_verdict_still_expires_at_the_time_relative_flip(service: Service) -> None:
    # Given: a cached user not seen lately
    now = service.clock.now
    await service.directory.upsert("u1", {"last_seen": (now - timedelta(days=3)).isoformat()}, replace=False)
    assert "recent" not in (await service.evaluator.evaluate_user("u1")).segments
    # When: a write makes it seen 23 hours ago
    await service.directory.upsert(
        "u1", {"last_seen": (now - timedelta(hours=23)).isoformat()}, replace=False
    )
    # Then: it is recent now, and no longer one hour and a second later, with nothing written
    assert "recent" in (await service.evaluator.evaluate_user("u1")).segments
    service.clock.now = now + timedelta(hours=1, seconds=1)
    assert "recent" not in (await service.evaluator.evaluate_user("u1")).segments


async def test_record_events__large_call__committed_in_the_thread_and_entries_dropped(
    service: Service,
) -> None:
    # Given: two cached users, and a call adding more per-day rows than run inline
    await service.directory.upsert("u1", {}, replace=False)
    await service.directory.upsert("u2", {}, replace=False)
    await _cached(service, ["u1", "u2"])
    events = [
        Event(user_id, "login", service.clock() - timedelta(days=day))
        for user_id in ("u1", "u2")
        for day in range(30)
    ]
    # When
    await service.directory.record_events(events)
    # Then: that commit was in the thread: nothing written through, every answer new
    assert (service.cache.peek("u1"), service.cache.peek("u2")) == (None, None)
    await service.assert_cache_matches_the_store(["u1", "u2"])
    assert "active" in (await service.evaluator.evaluate_user("u1")).segments
