"""Two replicas on one PostgreSQL database: each sees the other's writes, and direct SQL writes,
through LISTEN/NOTIFY — long before any cache TTL would expire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from sqlalchemy import text

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd.store.database import create_engine
from segmentd.store.notifications import LISTENER_APPLICATION_NAME
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2_grpc, segments_pb2_grpc
from tests.api.conftest import create_segment, upsert
from tests.conftest import _truncate

#: Far longer than any test: only a notification can explain a fresh answer.
LONG_TTL = 600.0
#: The bound within which a replica must see another's write (generous: CI machines are noisy).
NOTIFICATION_BOUND_SECONDS = 5.0


@pytest.fixture
async def pg_url(postgres_database_url: str) -> str:
    await _truncate(postgres_database_url)
    return postgres_database_url


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    settings = settings_for_tests(
        database_url=pg_url,
        migrate=False,
        host="127.0.0.1",
        profile_cache_ttl_seconds=LONG_TTL,
        catalogue_check_seconds=LONG_TTL,
    )
    first, second = await start_server(settings), await start_server(settings)
    try:
        for replica in (first, second):
            assert replica.listener is not None
            await asyncio.wait_for(replica.listener.listening.wait(), 10)
        yield first, second
    finally:
        await first.stop(None)
        await second.stop(None)


async def _eventually(check: Callable[[], Awaitable[bool]]) -> float:
    """Poll ``check`` until it holds; return how long that took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < NOTIFICATION_BOUND_SECONDS, "the change was not seen in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def _segments_of(channel: grpc.aio.Channel, user_id: str) -> list[str]:
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    return list((await stub.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))).segments)


async def test_write_through_one_replica__seen_by_the_other(replicas):
    first, second = replicas
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a,
        grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b,
    ):
        # Given: the second replica has the user and the segments cached
        segments, profiles = segments_pb2_grpc.SegmentServiceStub(a), profiles_pb2_grpc.ProfileServiceStub(a)
        await create_segment(
            segments,
            {
                "name": "free",
                "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
            },
        )
        await upsert(profiles, "u1", {"plan": "pro"})
        assert await _segments_of(b, "u1") == []

        # When: the profile changes through the first replica
        await upsert(profiles, "u1", {"plan": "free"})

        # Then: the second replica follows, and a new segment is seen too
        await _eventually(lambda: _equals(_segments_of(b, "u1"), ["free"]))
        await create_segment(segments, {"name": "everyone", "rule": {"all": {"rules": []}}})
        await _eventually(lambda: _equals(_segments_of(b, "u1"), ["everyone", "free"]))


async def test_direct_sql_write__seen_by_a_replica(replicas, pg_url):
    first, _ = replicas
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        await create_segment(
            segments_pb2_grpc.SegmentServiceStub(channel),
            {
                "name": "free",
                "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
            },
        )
        await upsert(profiles_pb2_grpc.ProfileServiceStub(channel), "u1", {"plan": "pro"})
        assert await _segments_of(channel, "u1") == []

        engine = create_engine(pg_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("""UPDATE profiles SET traits = '{"plan": "free"}' WHERE user_id = 'u1'""")
                )
        finally:
            await engine.dispose()

        await _eventually(lambda: _equals(_segments_of(channel, "u1"), ["free"]))


async def test_listener_connection_killed__caches_dropped_and_listening_resumes(replicas, pg_url):
    first, _ = replicas
    assert first.listener is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        await upsert(profiles_pb2_grpc.ProfileServiceStub(channel), "u1", {"plan": "pro"})
        await _segments_of(channel, "u1")
        assert len(first.profile_cache) == 1

        engine = create_engine(pg_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": LISTENER_APPLICATION_NAME},
                )
        finally:
            await engine.dispose()

        await _eventually(lambda: _holds(len(first.profile_cache) == 0))
        await asyncio.wait_for(first.listener.listening.wait(), 10)


async def _equals(actual: Awaitable[list[str]], expected: list[str]) -> bool:
    return await actual == expected


async def _holds(condition: bool) -> bool:
    return condition
