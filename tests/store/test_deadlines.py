"""The call's deadline (``store.deadlines``) bounds the store's work, without gRPC's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.errors import DeadlineExceeded, UserNotFound
from segmentd.store.deadlines import call_deadline, detached, remaining_seconds, restore_deadline
from segmentd.store.profiles import ProfileRepository


@pytest.fixture
def profiles(sessions: async_sessionmaker[AsyncSession]) -> ProfileRepository:
    return ProfileRepository(sessions)


@pytest.fixture
async def row_lock(engine: AsyncEngine, profiles: ProfileRepository) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the lock on profile ``held`` (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("holds a row lock: PostgreSQL")
    await profiles.upsert("held", {"plan": "free"})
    async with engine.connect() as connection, connection.begin():
        await connection.execute(text("SELECT 1 FROM profiles WHERE user_id = 'held' FOR UPDATE"))
        yield connection


async def _lock_waits(connection: AsyncConnection) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    return int((await connection.execute(query)).scalar_one())


async def test_store_operation__deadline_passes_in_a_statement__deadline_exceeded_and_statement_ended(
    row_lock: AsyncConnection, profiles: ProfileRepository
) -> None:
    # Given: a call with half a second left (the engine's statement_timeout is 5 s)
    previous = call_deadline(0.5)
    try:
        # When: its write waits for a lock held past that
        with pytest.raises(DeadlineExceeded, match="deadline passed during its database work"):
            await profiles.upsert("held", {"plan": "paid"})
    finally:
        restore_deadline(previous)

    # Then: PostgreSQL no longer runs the statement
    for _ in range(50):
        if not await _lock_waits(row_lock):
            break
        await asyncio.sleep(0.05)
    assert await _lock_waits(row_lock) == 0


async def test_store_operation__deadline_already_passed__deadline_exceeded_and_nothing_written(
    profiles: ProfileRepository,
) -> None:
    # Given: a call whose deadline has passed
    previous = call_deadline(0.0)
    try:
        # When / Then
        with pytest.raises(DeadlineExceeded, match="had passed before"):
            await profiles.upsert("late", {"plan": "paid"})
    finally:
        restore_deadline(previous)
    with pytest.raises(UserNotFound):
        await profiles.get("late")


async def test_detached__runs_free_of_the_callers_deadline() -> None:
    # Given: a call with a deadline
    previous = call_deadline(10.0)
    try:
        # When: it starts shared work
        shared = detached(_remaining())
        ordinary = asyncio.ensure_future(_remaining())
        # Then: the shared work has no deadline; an ordinary task keeps the caller's
        assert await shared is None
        assert await ordinary is not None
    finally:
        restore_deadline(previous)


async def _remaining() -> float | None:
    return remaining_seconds()
