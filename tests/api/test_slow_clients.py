"""Slow stream readers and a busy pool: listings never starve unary calls (issue 16, finding 5).

A reader that starts a member listing and stops reading once held a database connection
(and on PostgreSQL a transaction) until it went away; a handful of them exhausted the pool
and every other call answered UNAVAILABLE. Now each chunk is its own short query.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from segmentd.server import RunningServer
from segmentd.store.database import create_engine
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2
from tests.api.conftest import create_segment, profile_message, upsert

# Enough ids (~70 bytes each) that one listing outgrows HTTP/2's flow-control window many
# times over: a reader that stops reading really stops the server's stream.
_POPULATION = 10_000
_SLOW_READERS = 6


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    # A small pool makes exhaustion cheap to reach: 6 stalled streams would take all 4.
    return {
        "database_pool_size": 4,
        "database_max_overflow": 0,
        "stream_connections": 2,
        "database_pool_timeout_seconds": 0.5,
    }


def _user(i: int) -> str:
    return f"user-{i:06d}-" + "x" * 58


async def _batches() -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
    for start in range(0, _POPULATION, 2_000):
        yield profiles_pb2.ImportProfilesRequest(
            profiles=[profile_message(_user(i), {"plan": "free"}) for i in range(start, start + 2_000)]
        )


@pytest.fixture
async def large_segment(segments, profiles) -> None:
    await profiles.ImportProfiles(_batches())
    rule = {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}
    await create_segment(segments, {"name": "free", "rule": rule})


async def _idle_in_transaction(server: RunningServer) -> int:
    async with server.engine.connect() as connection:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'segmentd' AND state LIKE 'idle in transaction%' "
            # A moment between two statements of a transaction is not a stalled stream.
            "AND now() - state_change > interval '300 milliseconds'"
        )
        return int((await connection.execute(query)).scalar_one())


# The small pool of the fixture, with a patient turn: under a loaded machine the six listings'
# resumed chunks may queue for the two listing connections longer than the fixture's 0.5 s.
@pytest.mark.parametrize(
    "server_overrides",
    [
        {
            "database_pool_size": 4,
            "database_max_overflow": 0,
            "stream_connections": 2,
            "database_pool_timeout_seconds": 10.0,
        }
    ],
)
async def test_slow_readers__unary_calls_still_answer(large_segment, server, evaluation):
    # Given: listings whose readers took one message and stopped reading
    stalled = [evaluation.ListSegmentMembers(evaluation_pb2.ListSegmentMembersRequest(segment_name="free"))]
    stalled += [
        evaluation.ListSegmentMembers(evaluation_pb2.ListSegmentMembersRequest(segment_name="free"))
        for _ in range(_SLOW_READERS - 1)
    ]
    for call in stalled:
        assert len((await call.read()).user_ids) == 1_000
    await asyncio.sleep(0.5)  # let each server-side stream fill its window and block

    # When: unary calls arrive meanwhile
    verdicts = await asyncio.gather(
        *(evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=_user(i))) for i in range(20))
    )

    # Then: they answer, no session waits idle in a transaction, and every listing completes
    assert all(list(verdict.segments) == ["free"] for verdict in verdicts)
    if server.engine.dialect.name == "postgresql":
        assert await _idle_in_transaction(server) == 0
    for call in stalled:
        received = 1_000
        while (message := await call.read()) is not grpc.aio.EOF:
            received += len(message.user_ids)
        assert received == _POPULATION


@pytest.mark.parametrize(
    "server_overrides", [{"database_pool_size": 4, "database_max_overflow": 0, "stream_connections": 2}]
)
async def test_many_concurrent_listings__all_complete(large_segment, evaluation):
    # Given: more concurrent listings than the stream budget and the pool together
    async def listing() -> int:
        request = evaluation_pb2.ListSegmentMembersRequest(segment_name="free", page_size=3_000)
        return sum([len(message.user_ids) async for message in evaluation.ListSegmentMembers(request)])

    # When / Then: they take turns, and none fails
    assert await asyncio.gather(*(listing() for _ in range(12))) == [3_000] * 12


async def _hold_a_write(server: RunningServer, store_url: str) -> AsyncIterator[None]:
    """Keep a lock that the next write waits for, from outside the server."""
    if server.engine.dialect.name == "sqlite":
        database = sqlite3.connect(store_url.split("///", 1)[1], isolation_level=None)
        database.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            database.execute("ROLLBACK")
            database.close()
        return
    engine = create_engine(store_url)  # not the server's: its pool is what is measured
    try:
        async with engine.connect() as connection, connection.begin():
            await connection.execute(text("SELECT 1 FROM profiles WHERE user_id = 'held' FOR UPDATE"))
            yield
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "server_overrides",
    [{"database_pool_size": 1, "database_max_overflow": 0, "database_pool_timeout_seconds": 0.3}],
)
async def test_pool_exhausted__resource_exhausted_naming_the_pool(
    server, store_url, profiles, segments, evaluation
):
    # Given: the pool's only connection is taken by a write waiting for a lock held elsewhere
    # (on SQLite a segment write: profile writes and reads have threads of their own)
    await upsert(profiles, "held", {"plan": "free"})
    holder = _hold_a_write(server, store_url)
    await anext(holder)
    sqlite = server.engine.dialect.name == "sqlite"
    rule = {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "paid"}}
    write = (
        create_segment(segments, {"name": "paid", "rule": rule})
        if sqlite
        else profiles.UpsertProfile(
            profiles_pb2.UpsertProfileRequest(profile=profile_message("held", {"plan": "paid"})), timeout=10
        )
    )
    waiting = asyncio.ensure_future(write)
    await asyncio.sleep(0.3)

    # When: another call needs a connection
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if sqlite:
            await segments.ListSegments(segments_pb2.ListSegmentsRequest())
        else:
            await evaluation.EvaluateUser(
                evaluation_pb2.EvaluateUserRequest(user_id="held", consistency=evaluation_pb2.STRONG)
            )

    # Then: RESOURCE_EXHAUSTED says what ran out; once the lock goes, the write completes
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "connection pool is exhausted" in (caught.value.details() or "")
    with pytest.raises(StopAsyncIteration):
        await anext(holder)
    await waiting


async def test_postgresql_sessions__idle_in_transaction_timeout_is_set(server):
    if server.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    async with server.engine.connect() as connection:
        setting = (await connection.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar_one()
    assert setting == "1min"
