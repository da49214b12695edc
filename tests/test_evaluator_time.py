"""Cached profiles and time: verdicts follow the clock without any write (on both stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.engine.rules import Condition, EventCondition
from segmentd.evaluation import Evaluator
from segmentd.population import PercentileThresholds
from segmentd.profiles import ProfileCache
from segmentd.segments import SegmentCatalog
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event
from segmentd.store.segments import SegmentRepository

MIDNIGHT = datetime(2026, 3, 15, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MIDNIGHT - timedelta(seconds=1))


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


@pytest.fixture
def evaluator(
    sessions: async_sessionmaker[AsyncSession], profiles: ProfileRepository, clock: Clock
) -> Evaluator:
    catalog = SegmentCatalog(SegmentRepository(sessions), check_interval=3600)
    cache = ProfileCache(100, None)
    return Evaluator(catalog, profiles, cache, PercentileThresholds(profiles, ttl=3600), clock)


async def _define(
    sessions: async_sessionmaker[AsyncSession], name: str, rule: Condition | EventCondition
) -> None:
    await SegmentRepository(sessions).create(name, "", rule, {})


async def test_event_window__crosses_midnight_utc__cached_counts_read_again(
    sessions: async_sessionmaker[AsyncSession],
    profiles: ProfileRepository,
    evaluator: Evaluator,
    clock: Clock,
) -> None:
    # Given: one login 14 days before the last second of a day: inside a 14-day window
    await _define(sessions, "active", EventCondition("login", "GREATER_THAN_OR_EQUALS", 1, 14))
    await profiles.upsert("u1", {})
    await profiles.record_events([Event("u1", "login", clock.now - timedelta(days=14), 1)])
    assert (await evaluator.evaluate_user("u1")).segments == ["active"]
    # When: the clock passes midnight UTC, with nothing written
    clock.now = MIDNIGHT + timedelta(seconds=1)
    # Then: the window moved a day, and the cached count with it
    verdict = await evaluator.evaluate_user("u1")
    assert verdict.segments == []
    assert verdict.freshness is not None and verdict.freshness.profile_read_at == clock.now


async def test_event_window__same_day__answered_from_the_cache(
    sessions: async_sessionmaker[AsyncSession],
    profiles: ProfileRepository,
    evaluator: Evaluator,
    clock: Clock,
) -> None:
    await _define(sessions, "active", EventCondition("login", "GREATER_THAN_OR_EQUALS", 1, 14))
    await profiles.upsert("u1", {})
    first = await evaluator.evaluate_user("u1")
    clock.now -= timedelta(hours=20)  # still the same UTC day, earlier or later alike
    second = await evaluator.evaluate_user("u1")
    assert first.freshness == second.freshness


async def test_within_last_days__ages_out_of_a_cached_profile(
    sessions: async_sessionmaker[AsyncSession],
    profiles: ProfileRepository,
    evaluator: Evaluator,
    clock: Clock,
) -> None:
    # Given: a profile that logged in just now, cached
    await _define(sessions, "recent", Condition("last_login", "WITHIN_LAST_DAYS", 1))
    await profiles.upsert("u1", {"last_login": clock.now.isoformat()})
    assert (await evaluator.evaluate_user("u1")).segments == ["recent"]
    # When: exactly a day passes (still recent: the kept verdict holds), then a microsecond more
    clock.now += timedelta(days=1)
    assert (await evaluator.evaluate_user("u1")).segments == ["recent"]
    clock.now += timedelta(microseconds=1)
    # Then: the same cached profile is no longer recent
    verdict = await evaluator.evaluate_user("u1")
    assert verdict.segments == []
    assert verdict.freshness is not None and verdict.freshness.profile_read_at <= clock.now - timedelta(
        days=1
    )
