"""Event retention: RecordEvents refuses times the store does not keep; pruning removes old days."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import InvalidArgument
from segmentd.store.models import EventCountRow
from segmentd.store.notifications import EVERY_PROFILE, PROFILES_CHANNEL
from segmentd.store.profiles import ProfileRepository
from segmentd.store.records import Event
from segmentd.store.retention import EventRetention, count_prunable, prune_events

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str, date], int]:
    async with sessions() as session:
        rows = (await session.scalars(select(EventCountRow))).all()
    return {(row.user_id, row.name, row.day): row.count for row in rows}


@pytest.mark.parametrize(
    ("time", "message"),
    [
        pytest.param(datetime.now(UTC) - timedelta(days=31), "older than 30 days", id="too-old"),
        pytest.param(datetime.now(UTC) + timedelta(hours=2), "in the future", id="too-far-ahead"),
    ],
)
async def test_record_events__outside_retention__refused_naming_the_field(
    sessions: async_sessionmaker[AsyncSession], time: datetime, message: str
) -> None:
    profiles = ProfileRepository(sessions, EventRetention(days=30, future_seconds=3600))
    await profiles.upsert("u1", {})
    # When
    with pytest.raises(InvalidArgument) as raised:
        await profiles.record_events([Event("u1", "login", datetime.now(UTC)), Event("u1", "login", time)])
    # Then: nothing of the batch is kept
    assert raised.value.field == "events[1].time"
    assert message in str(raised.value)
    assert await _rows(sessions) == {}


async def test_record_events__oldest_kept_day_and_near_future__accepted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    oldest = datetime.combine(now.date() - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    profiles = ProfileRepository(sessions, EventRetention(days=30, future_seconds=3600))
    await profiles.upsert("u1", {})
    # When
    recorded = await profiles.record_events(
        [Event("u1", "login", oldest), Event("u1", "login", now + timedelta(minutes=30))]
    )
    # Then
    assert recorded == 2


async def test_prune__removes_only_days_before_the_cutoff_in_batches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keep_all = ProfileRepository(sessions, EventRetention(days=0))
    for user in ("u1", "u2"):
        await keep_all.upsert(user, {})
    cutoff = TODAY.date() - timedelta(days=10)
    await keep_all.record_events(
        [Event(user, "login", TODAY - timedelta(days=days)) for user in ("u1", "u2") for days in range(15)]
    )
    # When
    planned = await count_prunable(sessions, cutoff)
    removed = await prune_events(sessions, cutoff, batch_size=3)
    # Then: the count a dry run reports is what the prune removed
    assert planned == removed == 2 * 4
    assert await count_prunable(sessions, cutoff) == 0
    assert {day for _, _, day in await _rows(sessions)} == {
        TODAY.date() - timedelta(days=days) for days in range(11)
    }
    assert await prune_events(sessions, cutoff) == 0  # safe to run twice


async def test_prune__racing_record_events__loses_no_kept_count(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keep_all = ProfileRepository(sessions, EventRetention(days=0))
    users = [f"u{i}" for i in range(20)]
    for user in users:
        await keep_all.upsert(user, {})
    cutoff = TODAY.date() - timedelta(days=5)
    old = [Event(user, "login", TODAY - timedelta(days=days)) for user in users for days in range(6, 16)]
    await keep_all.record_events(old)
    profiles = ProfileRepository(sessions, EventRetention(days=5))

    async def record() -> int:
        total = 0
        for round_ in range(10):
            batch = [Event(user, "login", TODAY - timedelta(days=round_ % 5), 2) for user in users]
            total += 2 * await profiles.record_events(batch)
        return total

    # When: pruning in small batches while events keep arriving for the kept days
    recorded, removed = await asyncio.gather(record(), prune_events(sessions, cutoff, batch_size=7))
    # Then
    rows = await _rows(sessions)
    assert removed == len(old)
    assert all(day >= cutoff for _, _, day in rows)
    assert sum(rows.values()) == recorded
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(EventCountRow)) == len(users) * 5


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_prune__many_users__other_replicas_told_their_names_never_any_user(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    # Given old events of more users than one notification names, and a replica listening
    keep_all = ProfileRepository(sessions, EventRetention(days=0))
    users = [f"u{i:03}" for i in range(250)]
    for user in users:
        await keep_all.upsert(user, {})
    old = [
        Event(user, name, TODAY - timedelta(days=days))
        for user in users
        for name in "ab"
        for days in (20, 21)
    ]
    await keep_all.record_events(old[: len(old) // 2])
    await keep_all.record_events(old[len(old) // 2 :])
    listener = await asyncpg.connect(
        engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    heard: list[str] = []
    await listener.add_listener(PROFILES_CHANNEL, lambda *args: heard.append(args[3]))
    try:
        # When the old days are pruned
        removed = await prune_events(sessions, TODAY.date() - timedelta(days=10))
        await listener.execute("SELECT 1")  # the notifications sent before it have arrived
    finally:
        await listener.close()

    # Then every row went, and the replica was told each user's name, never "any user"
    assert removed == len(old)
    assert await _rows(sessions) == {}
    assert EVERY_PROFILE not in heard
    assert set(heard) == set(users)
