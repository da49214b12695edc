"""PercentileThresholds: one computation for all callers, stale values replaced in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.population import PercentileThresholds
from segmentd.store.profiles import ProfileRepository

KEY = ("margin", 50.0)


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingRepository(ProfileRepository):
    """The real repository, counting the percentile computations asked of the database."""

    computations = 0

    async def population_percentile(self, attribute_path: Sequence[str], percent: float) -> float | None:
        self.computations += 1
        return await super().population_percentile(attribute_path, percent)


@pytest.fixture
async def profiles(sessions: async_sessionmaker[AsyncSession]) -> CountingRepository:
    repository = CountingRepository(sessions)
    for i in range(1, 5):
        await repository.upsert(f"u{i}", {"margin": i})
    return repository


async def test_thresholds__concurrent_first_callers__one_computation(profiles: CountingRepository) -> None:
    thresholds = PercentileThresholds(profiles, ttl=60)
    results = await asyncio.gather(*(thresholds.thresholds([KEY]) for _ in range(10)))
    assert all(result == {KEY: 2} for result in results)
    assert profiles.computations == 1


async def test_thresholds__expired__old_value_while_one_recomputes(profiles: CountingRepository) -> None:
    # Given: a threshold, then a population change and the TTL past
    timer = FakeTimer()
    thresholds = PercentileThresholds(profiles, ttl=60, timer=timer)
    assert await thresholds.thresholds([KEY]) == {KEY: 2}
    for i in range(5, 9):
        await profiles.upsert(f"u{i}", {"margin": i})
    timer.now = 61.0
    # When: callers ask at once
    results = await asyncio.gather(*(thresholds.thresholds([KEY]) for _ in range(10)))
    # Then: nobody waited for the scan, and exactly one scan replaced the value
    assert all(result == {KEY: 2} for result in results)
    for _ in range(100):
        if (await thresholds.thresholds([KEY])) == {KEY: 4}:
            break
        await asyncio.sleep(0.01)
    assert await thresholds.thresholds([KEY]) == {KEY: 4}
    assert profiles.computations == 2


async def test_thresholds__fresh__computed_for_the_call(profiles: ProfileRepository) -> None:
    thresholds = PercentileThresholds(profiles, ttl=3600)
    assert await thresholds.thresholds([KEY]) == {KEY: 2}
    for i in range(5, 9):
        await profiles.upsert(f"u{i}", {"margin": i})
    assert await thresholds.thresholds([KEY]) == {KEY: 2}
    assert await thresholds.thresholds([KEY], fresh=True) == {KEY: 4}
    assert await thresholds.thresholds([KEY]) == {KEY: 4}
