"""A call's deadline bounds its database work, and a cancelled call cancels its query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.store.database import create_engine
from segmentd_client.v1 import evaluation_pb2, profiles_pb2
from tests.api.conftest import profile_message, upsert


@pytest.fixture
async def row_lock(store_url: str) -> AsyncIterator[AsyncConnection]:
    """A transaction of the test's own holding the lock on profile ``held`` (PostgreSQL)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("holds a row lock: PostgreSQL")
    engine = create_engine(store_url)
    try:
        async with engine.connect() as connection, connection.begin():
            await connection.execute(text("SELECT 1 FROM profiles WHERE user_id = 'held' FOR UPDATE"))
            yield connection
    finally:
        await engine.dispose()


async def _waiting_queries(connection: AsyncConnection) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'segmentd' AND wait_event_type = 'Lock'"
    )
    return int((await connection.execute(query)).scalar_one())


async def _upsert_held(profiles, timeout: float | None = None):
    request = profiles_pb2.UpsertProfileRequest(profile=profile_message("held", {"plan": "paid"}))
    return await profiles.UpsertProfile(request, timeout=timeout)


@pytest.fixture
async def held(profiles) -> None:
    await upsert(profiles, "held", {"plan": "free"})


async def test_deadline__expires_during_a_query__deadline_exceeded_and_query_cancelled(
    held, row_lock, profiles
):
    # When: a write waits for a lock past its deadline
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _upsert_held(profiles, timeout=1.0)

    # Then: DEADLINE_EXCEEDED, and the database no longer runs its statement
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.5)
    assert await _waiting_queries(row_lock) == 0


@pytest.fixture
async def table_lock(store_url: str) -> AsyncIterator[AsyncConnection]:
    """A transaction of the test's own holding an exclusive lock on ``profiles`` (PostgreSQL)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("holds a table lock: PostgreSQL")
    engine = create_engine(store_url)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def test_deadline__expires_during_the_cold_evaluate_user_read__deadline_exceeded_and_query_ended(
    held, table_lock, evaluation
):
    # Given: the catalogue loaded, and the profiles table locked by another transaction
    await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="held"))
    async with table_lock.begin():
        await table_lock.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))

        # When: the one-statement read of an uncached user waits past its deadline
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="cold"), timeout=1.0)

        # Then: DEADLINE_EXCEEDED, and the database no longer runs the read
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for _ in range(50):
            if not await _waiting_queries(table_lock):
                break
            await asyncio.sleep(0.05)
        assert await _waiting_queries(table_lock) == 0


async def test_cancelled_call__cancels_its_query(held, row_lock, profiles):
    # Given: a write waiting for a lock
    call = asyncio.ensure_future(_upsert_held(profiles))
    for _ in range(50):
        if await _waiting_queries(row_lock):
            break
        await asyncio.sleep(0.05)
    assert await _waiting_queries(row_lock) == 1

    # When: the caller cancels it
    call.cancel()

    # Then: the statement is cancelled in the database too
    for _ in range(50):
        if not await _waiting_queries(row_lock):
            break
        await asyncio.sleep(0.05)
    assert await _waiting_queries(row_lock) == 0
